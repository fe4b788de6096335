"""Streamlit front end and the `lingualoop` command line."""
