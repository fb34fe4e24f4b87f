#!/usr/bin/env bash
# Install everything the tests need (a venv in .venv, Debian chromium for the browser test) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-test.txt
# DeepSpeed (train --deepspeed) builds against the torch installed above
.venv/bin/python -m pip install -q --no-build-isolation -r requirements-deepspeed.txt \
  || echo "warning: could not install DeepSpeed; its tests will be skipped" >&2
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/python -m pytest "$@"
