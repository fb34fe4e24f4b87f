"""The service on Ray Serve, for real: a local Ray instance started by the test, a Serve application of 2 replicas
on the tiny preset, and the front the app uses. Every result equals the in-process service's; a replica killed
mid-way costs its request a retry, nothing is lost."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from controlnet_demo.errors import UserInputError
from controlnet_demo.service import ControlNetService, Done, StepDone, UnitSpec, final_output, read_parameters
from controlnet_demo.settings import Settings
from tests.builders import small_spec

ray = pytest.importorskip("ray", reason="the Ray test needs requirements-scale.txt")
pytestmark = pytest.mark.ray

SETTINGS = Settings(preset="tiny", preview_every=0)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    from ray import serve

    from controlnet_demo.serving.ray_serve import APP, RemoteService, deployment

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # 4 logical CPUs on a 2-core machine: the 2 replicas (1 each) and room for Serve's controller
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    try:
        serve.start(http_options={"location": "NoServer"})  # no HTTP proxy: the front calls through handles
        handle = serve.run(deployment(SETTINGS, replicas=2), name=APP, route_prefix=None)
        yield RemoteService(SETTINGS, handle, replicas=2, output_dir=str(tmp_path_factory.mktemp("front")))
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture
def here(tmp_path_factory):
    """The in-process service, at the replicas' one torch thread (Ray gives a 1-CPU actor OMP_NUM_THREADS=1; on a
    CPU another thread count rounds some sums differently, by 1e-7)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ControlNetService(SETTINGS, output_dir=str(tmp_path_factory.mktemp("here")))
    torch.set_num_threads(threads)


def specs(astronaut, n, **changes):
    return [small_spec(astronaut, seed=k, prompt=f"a red circle, {k}", **changes) for k in range(n)]


def test_eight_requests_at_once_are_shared_by_the_replicas_and_equal_the_in_process_results(front, here, astronaut):
    requests = specs(astronaut, 8)
    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(lambda spec: final_output(front.generate(spec, client="1.2.3.4")), requests))
    assert len(front.served_by) == 2 and sum(front.served_by.values()) >= 8  # both replicas served
    for spec, output in zip(requests, outputs):
        alone = final_output(here.generate(spec))
        assert np.array_equal(output.result.images, alone.result.images)  # bit for bit
        assert output.params["seeds"] == [spec.seed]
        assert read_parameters(output.files[0])["prompt"] == spec.prompt  # the PNG written in the front


def test_a_replicas_errors_reach_the_front_in_words_and_detect_and_live_go_remote(front, here, astronaut):
    with pytest.raises(UserInputError, match="Steps must be between 1"):
        final_output(front.generate(small_spec(astronaut, steps=0)))
    unit = UnitSpec("canny", astronaut, preprocess_resolution=128)
    assert np.array_equal(front.detect(unit), here.detect(unit))
    frame = front.live(small_spec(astronaut, speed="fast", seed=3), client="c1")
    assert np.array_equal(
        frame.result.images, here.live(small_spec(astronaut, speed="fast", seed=3), "c1").result.images
    )
    assert front.zero_conv_norms("canny") == here.zero_conv_norms("canny")


def test_a_replica_killed_mid_way_costs_its_request_a_retry_and_nothing_is_lost(front, here, astronaut):
    from ray import serve

    requests = specs(astronaut, 4, steps=40)
    stepping = threading.Semaphore(0)  # one release per request that has reached its first step

    def run(spec):
        events = []
        for event in front.generate(spec):
            events.append(event)
            if isinstance(event, StepDone) and event.step == 1:
                stepping.release()
        return events

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(run, spec) for spec in requests]
        for _ in range(2):  # both replicas are busy with a request
            assert stepping.acquire(timeout=300)
        replicas = [a for a in ray.util.list_named_actors(all_namespaces=True) if "SERVE_REPLICA" in a["name"]]
        assert len(replicas) == 2
        ray.kill(ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"]), no_restart=True)
        results = [f.result(timeout=600) for f in futures]

    for spec, events in zip(requests, results):
        assert isinstance(events[-1], Done), events[-1]  # every request finished
        alone = final_output(here.generate(spec))
        assert np.array_equal(events[-1].output.result.images, alone.result.images)
    restarted = [step.step for events in results for step in events if isinstance(step, StepDone)]
    assert restarted.count(1) >= 5  # the killed replica's request started again
    serve.status()  # the controller still answers (and replaces the replica)


def test_the_app_on_the_front_serves_its_endpoints_from_the_replicas(front, files):
    """The launched Gradio app with the front as its service: /canny through gradio_client, as a user's browser
    would send it, answered by a replica; the app's GPU queue is as wide as the deployment."""
    from gradio_client import Client

    from controlnet_demo.ui import build, launch
    from tests.apiclient import generate

    served = sum(front.served_by.values())
    blocks = build(front)
    launch(front, blocks, prevent_thread_lock=True, quiet=True)
    try:
        result = generate(Client(blocks.local_url, verbose=False), "/canny", files)
        assert len(result.images) == 1 and result.params["units"][0]["condition"] == "canny"
        assert sum(front.served_by.values()) == served + 1  # a replica made it
    finally:
        blocks.close()
