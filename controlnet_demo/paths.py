"""Where the repository's files are, computed once: assets, examples, the embedded model, the docs."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
EXAMPLES_DIR = ASSETS_DIR / "examples"
OFFLINE_MODEL_DIR = ASSETS_DIR / "offline-model"
PAPER_FIGURES = ASSETS_DIR / "paper-figures.json"  # the papers' figures beside ours (the How tab)
TOKENIZER_DIR = ASSETS_DIR / "clip-tokenizer"
DOCS_DIR = REPO_ROOT / "docs"


def shown(source: str) -> str:
    """A model source as the UI and the PNG metadata show it: folders of this repo relative to it (no machine
    paths in pictures or screenshots), anything else as is."""
    path = Path(source)
    if not path.is_dir():  # a hub id or a builtin model
        return source
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:  # a folder elsewhere: the operator's own choice, shown as given
        return source
