"""Streamlit glue: session keys, cached wrappers and Plotly figure builders.

The engine never imports this package; pages import it.
"""
