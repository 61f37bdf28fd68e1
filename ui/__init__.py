"""Gradio page: a thin, typed client of the gateway."""
