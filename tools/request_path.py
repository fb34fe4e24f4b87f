"""Which of the package's files one request passes through, from the click to the result PNG: the launched app (tiny
preset), one Canny request through its API, every function call recorded by a profile hook on every thread.

    HF_HUB_OFFLINE=1 .venv/bin/python -m tools.request_path [--endpoint /canny]

Prints the files (relative to the package) in the order the request first entered each, their count and the count of
the package's distinct functions it called (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="/canny")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    import controlnet_demo
    from controlnet_demo.paths import EXAMPLES_DIR
    from controlnet_demo.service import ControlNetService
    from controlnet_demo.settings import Settings
    from controlnet_demo.ui import build, launch

    seen: dict[str, None] = {}
    functions: set[tuple[str, str]] = set()
    recording = threading.Event()
    package = Path(controlnet_demo.__file__).parent
    root = str(package)

    def hook(frame, event, arg):
        if event == "call" and recording.is_set():
            name = frame.f_code.co_filename
            if name.startswith(root):
                seen.setdefault(name, None)
                functions.add((name, frame.f_code.co_qualname))

    service = ControlNetService(Settings(preset="tiny"))
    blocks = build(service)
    threading.setprofile(hook)
    sys.setprofile(hook)
    launch(service, blocks, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(blocks.local_url, verbose=False)
        request = dict(image=handle_file(str(EXAMPLES_DIR / "astronaut.jpg")), prompt="a test", steps=2)
        request.update(resolution=64, seed=1, randomize_seed=False)
        client.predict(api_name=args.endpoint, **request)  # models loaded, first-call costs paid
        recording.set()
        client.predict(api_name=args.endpoint, **request)
        recording.clear()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        blocks.close()
    files = [str(Path(f).relative_to(package)) for f in seen]
    for name in files:
        print(name)
    print(f"{len(files)} files, {len(functions)} functions")


if __name__ == "__main__":
    main()
