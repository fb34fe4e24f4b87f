"""Serving beyond one process: the service as a Ray Serve deployment, and the thin front the Gradio app uses to send
its requests there (`pip install -r requirements-scale.txt`; nothing here is imported unless asked for)."""
