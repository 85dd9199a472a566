"""Avatar Studio: the Streamlit front end of the Avatar Generator API (`streamlit run frontend/app.py`).

Everything it shows comes from the API over HTTP (frontend/client.py), so a browser refresh or a second browser
sees the same jobs. When it listens beyond loopback it shows nothing until the visitor gives a valid API key.
"""

from __future__ import annotations

import logging

import streamlit as st

from frontend import guard, ui

st.set_page_config(page_title="Avatar Studio", page_icon=":material/face:", layout="wide")

if not guard.host_allowed(st.context.headers.get("Host")):
    # A page that rebound its own name to this machine: it gets nothing (README "Security").
    st.error(
        "This studio does not answer to this host name. Open it as http://127.0.0.1:<port> (through your "
        "SSH tunnel), or add the name to AVATAR_ALLOWED_HOSTS."
    )
    st.stop()

if ui.exposed() and not st.session_state.get("signed_in_key"):
    # The only page such a visitor can reach; the real pages are not even registered.
    st.navigation([st.Page("views/sign_in.py", title="Sign in", icon=":material/key:")], position="hidden").run()
    st.stop()

pages = [
    st.Page(ui.PAGES["create"], title="Create", icon=":material/movie_edit:", default=True),
    st.Page(ui.PAGES["jobs"], title="Jobs", icon=":material/pending_actions:"),
    st.Page(ui.PAGES["gallery"], title="Gallery", icon=":material/video_library:"),
    st.Page(ui.PAGES["profiles"], title="Face profiles", icon=":material/face_retouching_natural:"),
    st.Page(ui.PAGES["workspace"], title="Workspace", icon=":material/folder_managed:"),
    st.Page(ui.PAGES["server"], title="Server", icon=":material/dns:"),
]
page = st.navigation(pages)

state = ui.server_state()
st.session_state["server_state"] = state  # pages read it instead of asking the server again
with st.sidebar:
    if "error" in state:
        st.badge(
            "Server unreachable" if isinstance(state["error"], ui.ServerUnreachable) else "API key refused",
            icon=":material/cloud_off:",
            color="red",
        )
    else:
        model = ui.loaded_model(state) or {}
        color = {"READY": "green", "BUSY": "blue", "STARTING": "orange"}.get(state.get("status"), "red")
        st.badge(state.get("status", "?"), icon=":material/dns:", color=color)
        if model.get("tiny"):
            st.badge("tiny checkpoint", icon=":material/science:", color="orange")
        queue = state.get("queue") or {}
        st.caption(f"{queue.get('processing', 0)} running · {queue.get('waiting', 0)} waiting")
    st.caption(f"API {ui.api_url()}")
ui.banner(state)
try:
    page.run()
except Exception as exc:  # the last line of defence: words on the page, the traceback in the log
    # Streamlit's own control flow (rerun, stop, switch page) is not an Exception, so it passes through.
    logging.getLogger("avatar.studio").exception("page %s failed", page.title)
    st.error(
        f"This page ran into a problem it did not expect ({type(exc).__name__}: {exc}). What you entered "
        "is kept; try again, or reload the page. The studio's log has the details.",
        icon=":material/error:",
    )
