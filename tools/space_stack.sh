#!/usr/bin/env bash
# The fast test subset on the stack a ZeroGPU Space runs: Python 3.12 and the torch of pre-requirements.txt, installed
# as a Space installs them (pre-requirements.txt first, then requirements.txt, whose torch range keeps it).
#   SPACE_PYTHON=python3.12 bash tools/space_stack.sh [PYTEST ARGS]   # a Python 3.12 interpreter; several GB of wheels
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${SPACE_PYTHON:-python3.12}"
VENV="${SPACE_VENV:-.venv-space}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r pre-requirements.txt
"$VENV/bin/python" -m pip install -q -r requirements.txt "pytest>=8" "scikit-image>=0.24" "ruff>=0.6" "spaces==0.51.3"
"$VENV/bin/python" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__)"
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
"$VENV/bin/python" -m pytest -m "not slow and not browser and not ray" "$@"
