"""Start `python app.py` as its own process for the measuring scripts, and read its memory from /proc."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def running_app(**env_settings: str):
    """Yields (process, url, seconds until it answered); CONTROLNET_DEMO_<KEY> env vars from env_settings."""
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "CONTROLNET_DEMO_PORT": str(port),
        **{f"CONTROLNET_DEMO_{k.upper()}": str(v) for k, v in env_settings.items()},
    }
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the app exited during start-up") from None
                time.sleep(0.1)
        yield server, url, time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
