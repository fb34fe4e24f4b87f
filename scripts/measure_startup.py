"""Cold start and time to first image of the app on the offline model, and the server's peak memory.

Starts `python app.py` as a fresh process, polls until it answers, sends one /canny request through
gradio_client, and reads the server's peak RSS from /proc. Run from the repo root:

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/measure_startup.py
"""

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


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONTROLNET_DEMO_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
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
        ready = time.perf_counter() - t0
        from gradio_client import Client, handle_file

        client = Client(url, verbose=False)
        t1 = time.perf_counter()
        client.predict(handle_file("assets/examples/astronaut.jpg"), "an astronaut", api_name="/canny")
        first = time.perf_counter() - t1
        t2 = time.perf_counter()
        client.predict(handle_file("assets/examples/astronaut.jpg"), "an astronaut", api_name="/canny")
        second = time.perf_counter() - t2
        print(f"cold start (process start -> app answers): {ready:.1f} s")
        print(f"first image (default settings, incl. model load): {first:.1f} s; second image: {second:.1f} s")
        print(f"time to first image from process start: {ready + first:.1f} s")
        print(f"server peak RSS: {peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
