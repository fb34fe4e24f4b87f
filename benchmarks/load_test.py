"""Many clients at once against the launched app: every result checked against its serial reference.

Starts `python app.py` (its own process, so its memory is its own), sends every request once from a single
client (the references), then the same requests again from N concurrent gradio_client clients, and reports
throughput, latency percentiles, errors, results that differ from their reference, and the server's memory.
Run from the repo root (the tiny preset by default: fast, random weights):

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.load_test --clients 8 --requests 5
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.load_test --preset offline --steps 20 --resolution 64
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
from PIL import Image

from benchmarks.appserver import memory_mb, running_app

EXAMPLES = "assets/examples"
TABS = [  # (endpoint, the example it controls with, its preprocessor)
    ("/canny", "astronaut.jpg", "canny"),
    ("/pose", "pose_waving.png", "none"),
    ("/depth", "world_depth.png", "none"),
    ("/canny", "world_picture.png", "canny"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="tiny (default), offline, sd15 or auto")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5, help="per client")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=128)
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    plan = {}
    for c in range(args.clients):
        for j in range(args.requests):
            endpoint, example, preprocessor = TABS[(c + j) % len(TABS)]
            plan[c, j] = (
                endpoint,
                dict(
                    image=handle_file(f"{EXAMPLES}/{example}"),
                    preprocessor=preprocessor,
                    seed=1000 + 100 * c + j,
                    randomize_seed=False,
                    prompt=f"client {c}, request {j}: a red circle",
                    steps=args.steps,
                    resolution=args.resolution,
                    num_images=1,
                ),
            )

    def run(client, key):
        endpoint, values = plan[key]
        started = time.perf_counter()
        images = client.predict(api_name=endpoint, **values)[0]
        with Image.open(images[0]["image"]) as im:
            return np.asarray(im.convert("RGB")), time.perf_counter() - started

    with running_app(preset=args.preset, queue_size=max(16, args.clients * 2)) as (server, url, ready):
        serial = Client(url, verbose=False)
        run(serial, (0, 0))  # warm-up: loads the models
        rss_start = memory_mb(server.pid)
        references, serial_latency = {}, []
        t0 = time.perf_counter()
        for key in plan:
            references[key], seconds = run(serial, key)
            serial_latency.append(seconds)
        serial_wall = time.perf_counter() - t0

        results, latency, errors = {}, [], []
        barrier = threading.Barrier(args.clients)

        def client_thread(c):
            client = Client(url, verbose=False)
            barrier.wait()
            for j in range(args.requests):
                try:
                    results[c, j], seconds = run(client, (c, j))
                    latency.append(seconds)
                except Exception as exc:
                    errors.append(f"client {c} request {j}: {exc}")

        threads = [threading.Thread(target=client_thread, args=(c,)) for c in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss_end, peak = memory_mb(server.pid), memory_mb(server.pid, "VmHWM")

    n = len(plan)
    differ = [k for k in plan if k in results and not np.array_equal(results[k], references[k])]
    distinct = len({r.tobytes() for r in references.values()})
    q = statistics.quantiles(latency, n=20) if len(latency) > 1 else [float("nan")] * 19
    print(f"preset {args.preset}, {args.steps} steps at {args.resolution} px; app answered after {ready:.1f} s")
    print(
        f"serial, 1 client: {n} requests in {serial_wall:.1f} s = {n / serial_wall:.2f} req/s, "
        f"median {statistics.median(serial_latency):.2f} s"
    )
    print(
        f"{args.clients} clients x {args.requests}: {len(results)}/{n} done in {wall:.1f} s = "
        f"{len(results) / wall:.2f} req/s; latency median {statistics.median(latency):.2f} s, "
        f"p95 {q[18]:.2f} s, max {max(latency):.2f} s"
    )
    print(
        f"errors: {len(errors)}; results different from their serial reference: {len(differ)} "
        f"(references pairwise distinct: {distinct}/{n})"
    )
    print(f"server RSS after warm-up {rss_start:.0f} MB, after the run {rss_end:.0f} MB, peak {peak:.0f} MB")
    for e in errors[:5]:
        print("  ", e)
    if errors or differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
