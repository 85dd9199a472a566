"""Shown instead of everything else when the studio listens beyond loopback: the API key first."""

from __future__ import annotations

import streamlit as st

from frontend import config, ui
from frontend.client import ApiClient, ApiError, AuthError

st.title("Avatar Studio")
st.write(
    "This studio is reachable from the network, so it needs the server's API key before it shows or does anything."
)

with st.form("sign-in"):
    key = st.text_input("API key", type="password", key="sign_in_key")
    submitted = st.form_submit_button("Sign in", type="primary", icon=":material/key:", key="sign_in_submit")

if submitted:
    candidate = (key or "").strip()
    probe = ApiClient(config.api_url(), candidate or None)
    try:
        if not probe.requires_key():
            # The API accepts anyone: a key would prove nothing, so refuse rather than open the studio.
            st.error(
                "The API at the configured address does not require a key, so the studio refuses to open to "
                "the network. Set AVATAR_API_KEYS on the server, or listen on 127.0.0.1 and use an SSH "
                "tunnel."
            )
        elif not candidate:
            st.error("Enter the API key.")
        else:
            probe.check_key()
            st.session_state["signed_in_key"] = candidate
            st.rerun()
    except AuthError:
        st.error("That key is not accepted by the server.", icon=":material/key_off:")
    except ApiError as exc:
        ui.show_error(exc)
    finally:
        probe.close()
