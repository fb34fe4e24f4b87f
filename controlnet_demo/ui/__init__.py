"""The Gradio app: tabs generated from the condition table, all feeding the one service."""

from .app import build, launch

__all__ = ["build", "launch"]
