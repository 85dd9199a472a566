"""Server: health, workers, the loaded model (tiny or real), and the API URL and key this studio uses."""

from __future__ import annotations

import streamlit as st

from frontend import config, ui
from frontend.client import ApiClient, ApiError

STATE_WORDS = {
    "READY": "A worker is idle and takes the next job at once.",
    "BUSY": "Every worker is making something; new jobs wait in the queue.",
    "STARTING": "A worker is loading the model; jobs wait until it is ready.",
    "SETUP_FAILED": "The worker could not load the model (missing weights, no GPU…). Nothing will run.",
    "DEFUNCT": "No worker is alive. Jobs wait; check the server log (the supervisor restarts crashed workers).",
}


def masked(key: str | None) -> str:
    if not key:
        return "(none)"
    return key[:3] + "…" + key[-2:] if len(key) > 8 else "•" * len(key)


st.title("Server")
state = st.session_state.get("server_state") or ui.server_state()
if st.button("Refresh", icon=":material/refresh:", key="server_refresh"):
    st.rerun()

if "error" not in state:
    status = state.get("status", "?")
    st.subheader(f"Health: {status}")
    st.write(STATE_WORDS.get(status, ""))
    queue = state.get("queue") or {}
    a, b, c = st.columns(3)
    a.metric("Running", queue.get("processing", 0), border=True)
    b.metric("Waiting", queue.get("waiting", 0), border=True)
    c.metric("Workers alive", sum(1 for w in state.get("workers", []) if w.get("alive")), border=True)

    model = ui.loaded_model(state)
    st.subheader("Model")
    if model is None:
        st.write("No worker has loaded a model yet.")
    else:
        if model.get("tiny"):
            st.warning(
                "This is the **tiny test checkpoint**: random weights, so every clip is noise. It exists to "
                "test the whole pipeline without a GPU or downloads.",
                icon=":material/science:",
            )
        ui.kv_table(
            {
                "family": model.get("family"),
                "version": model.get("model_version"),
                "checkpoint": model.get("checkpoint"),
                "tiny test checkpoint": "yes" if model.get("tiny") else "no",
                "device": model.get("device"),
                "quantization": model.get("quantization"),
            }
        )

    st.subheader("Workers")
    rows = [
        {
            "id": w.get("id"),
            "state": w.get("state"),
            "alive": w.get("alive"),
            "host": w.get("host"),
            "pid": w.get("pid"),
            "device": w.get("device"),
            "job": w.get("job_id") or "",
            "model": (w.get("model") or {}).get("model_version", ""),
            "last heartbeat": ui.when(w.get("last_heartbeat")),
            "error": w.get("error") or "",
        }
        for w in state.get("workers", [])
    ]
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.caption("No worker has reported itself yet.")

st.subheader("Connection")
ui.kv_table(
    {
        "API URL": ui.api_url(),
        "API key": masked(ui.api_key()),
        "studio listens on": str(st.get_option("server.address") or "every interface"),
    }
)
if ui.exposed():
    st.caption(
        "The studio is reachable from the network, so the API URL is fixed (AVATAR_API_URL) and the key is the "
        "one you signed in with."
    )
    if st.button("Sign out", icon=":material/logout:", key="sign_out"):
        st.session_state.pop("signed_in_key", None)
        st.rerun()
else:
    with st.form("connection"):
        st.caption(f"For this browser session only. Defaults: AVATAR_API_URL ({config.api_url()}) and AVATAR_API_KEY.")
        url = st.text_input("API URL", value=ui.api_url(), key="conn_url")
        key = st.text_input("API key", value=ui.api_key() or "", type="password", key="conn_key")
        if st.form_submit_button("Connect", icon=":material/link:", key="conn_submit"):
            probe = ApiClient(url.strip() or config.api_url(), key.strip() or None)
            try:
                probe.health_check()
                probe.check_key()
            except ApiError as exc:
                ui.show_error(exc, prefix="Not switched: ")
            else:
                st.session_state["api_url_override"] = url.strip() or None
                st.session_state["api_key_override"] = key.strip() or None
                st.rerun()
            finally:
                probe.close()
    if st.session_state.get("api_url_override") or st.session_state.get("api_key_override"):
        if st.button("Back to the defaults", key="conn_reset"):
            st.session_state.pop("api_url_override", None)
            st.session_state.pop("api_key_override", None)
            st.rerun()
