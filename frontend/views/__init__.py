"""Studio pages: Streamlit runs each file as a script (see frontend/app.py)."""
