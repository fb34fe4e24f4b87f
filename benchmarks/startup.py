"""Cold start and time to first image of the app on the offline model, and the server's peak memory.

Starts `python app.py` as a fresh process, polls until it answers, sends one /canny request through
gradio_client, and reads the server's peak RSS from /proc. Run from the repo root:

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.startup
"""

import time

from benchmarks.appserver import memory_mb, running_app


def main() -> None:
    with running_app() as (server, url, ready):
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
        print(f"server peak RSS: {memory_mb(server.pid, 'VmHWM'):.0f} MB")


if __name__ == "__main__":
    main()
