"""The service's one entry point: a request's typed events, in order, what passes between its steps frozen, and its
errors and cancellations as events, on the tiny preset."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading

import pytest

from controlnet_demo.errors import UserInputError
from controlnet_demo.service import (
    ControlNetService,
    Done,
    Failed,
    ImagesReady,
    MapsReady,
    StepDone,
    final_output,
    read_parameters,
)
from controlnet_demo.settings import Settings
from tests.apiclient import counting_steps
from tests.builders import small_spec


def test_one_request_yields_maps_then_every_step_then_its_images_then_done(service, astronaut):
    events = list(service.generate(small_spec(astronaut)))
    assert [type(e) for e in events] == [MapsReady, StepDone, StepDone, StepDone, ImagesReady, Done]
    assert [(e.step, e.steps) for e in events[1:4]] == [(1, 3), (2, 3), (3, 3)]
    prepared, output = events[0].prepared, events[-1].output
    assert prepared.params["seed"] == 5 and prepared.request.steps == 3
    checks = [c.as_dict() for c in output.checks]
    assert output.params == {
        **prepared.params,
        "seconds": output.params["seconds"],
        "seeds": [5],
        "control_check": checks,
    }
    assert [c["condition"] for c in checks] == ["canny"]
    assert read_parameters(output.files[0])["prompt"] == "a red circle"
    assert output.maps[0] is prepared.maps[0]  # the map shown is the map the engine read
    assert events[4].images is output.result.images  # shown before the check, the very images checked and saved


def test_the_images_reach_the_caller_before_the_control_check_runs(service, astronaut, monkeypatch):
    shown, check, waited = threading.Event(), service.check, []

    def checking(prepared, result):  # the check waits until the caller has the images (it would wait in vain if
        waited.append(shown.wait(timeout=120))  # they came only after it)
        return check(prepared, result)

    monkeypatch.setattr(service, "check", checking)
    for event in service.generate(small_spec(astronaut)):
        if isinstance(event, ImagesReady):
            shown.set()
    assert waited == [True]


def test_what_passes_between_the_steps_is_frozen_and_never_changed_after(service, astronaut):
    events = service.generate(small_spec(astronaut))
    prepared = next(events).prepared
    before = json.dumps(prepared.params, sort_keys=True)
    final_output(events)
    assert json.dumps(prepared.params, sort_keys=True) == before  # the run added to a copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.params = {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.request.units[0].strength = 2.0


def test_a_bad_request_is_one_failed_event_in_words_before_any_model_runs(service, astronaut):
    events = list(service.generate(small_spec(astronaut, steps=0)))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert isinstance(events[0].error, UserInputError) and "Steps must be between 1" in str(events[0].error)
    with pytest.raises(UserInputError, match="Steps"):
        final_output(service.generate(small_spec(astronaut, steps=0)))


def test_closing_the_stream_stops_the_job_at_its_next_step(service, astronaut):
    with counting_steps(service, pause_s=0.02) as steps:
        with contextlib.closing(service.generate(small_spec(astronaut, steps=50))) as events:
            for event in events:
                if isinstance(event, StepDone):
                    break  # the user pressed Stop after the first step
        with service.engine._lock:  # the job has ended
            pass
    assert 1 <= max(steps) < 50  # it stopped instead of running its 50 steps
    assert final_output(service.generate(small_spec(astronaut))).params["seeds"] == [5]  # and the next request runs


def test_a_client_is_rate_limited_and_the_cli_is_not(astronaut, tmp_path):
    limited = ControlNetService(Settings(preset="tiny", rate_limit_per_minute=1), output_dir=str(tmp_path))
    spec = small_spec(astronaut, steps=1)
    assert isinstance(list(limited.generate(spec, client="1.2.3.4"))[-1], Done)
    refused = list(limited.generate(spec, client="1.2.3.4"))
    assert len(refused) == 1 and "Too many requests" in str(refused[0].error)
    assert isinstance(list(limited.generate(spec))[-1], Done)  # client None: the CLI, no limit


def test_only_the_results_the_service_wrote_are_pruned_never_other_files_in_its_folder(astronaut, tmp_path):
    import os
    import time

    from PIL import Image

    theirs = tmp_path / "holiday.png"  # the user's own picture in the CLI's --out folder, days old
    Image.new("RGB", (8, 8)).save(theirs)
    os.utime(theirs, (time.time() - 3 * 86400,) * 2)
    service = ControlNetService(Settings(preset="tiny", cache_ttl_s=0), output_dir=str(tmp_path))
    first = final_output(service.generate(small_spec(astronaut, steps=1))).files[0]
    second = final_output(service.generate(small_spec(astronaut, steps=1))).files[0]
    assert theirs.exists()  # never the service's to delete
    assert not os.path.exists(first) and os.path.exists(second)  # its own, past the TTL, went when the next came


def test_requests_run_on_kept_threads_not_a_new_one_each(service, astronaut, monkeypatch):
    """torch's first work on a fresh thread is slower (docs/performance.md#live-drawing): one request after another
    runs on the same kept thread, never on the caller's."""
    import threading

    threads, real_run = [], service.run
    monkeypatch.setattr(service, "run", lambda *a, **k: (threads.append(threading.get_ident()), real_run(*a, **k))[1])
    for seed in (1, 2, 3):
        final_output(service.generate(small_spec(astronaut, seed=seed)))
    assert len(threads) == 3 and len(set(threads)) == 1 and threads[0] != threading.get_ident()


def test_the_pose_editor_s_start_is_refused_in_words_without_the_openpose_weights(service, astronaut):
    """Offline the detector has no weights: the editor's "start from the image's pose" is told so (the page then
    starts from a standing figure), naming the file it would need; a bad image is refused before that."""
    from controlnet_demo.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="body_pose_model.pth"):
        service.detect_pose(astronaut, 512)
    with pytest.raises(UserInputError, match="Preprocessor resolution"):
        service.detect_pose(astronaut, 10)


def test_one_picture_precedence_and_a_map_only_where_its_condition_edits_one():
    """unit_from, for every surface: a given map (a pose's JSON, a painted map in use) before an upload, the image,
    the pad, a drawing; a condition whose map is not edited by hand (a normal map, a photo read as it is) ignores an
    edited map that a client sends, or that a Compose unit kept from the condition it had before."""
    from controlnet_demo.conditions import CONDITIONS
    from controlnet_demo.service.specs import unit_from

    values = dict(upload="up.png", image="image.png", pad="data:image/png;base64,pad", preprocessor="canny")
    assert unit_from(values, condition="canny", resolution=64).image == "up.png"
    assert unit_from({**values, "upload": None}, condition="canny", resolution=64).image == "image.png"
    assert unit_from({"pad": "data:pad", "drawing": {"x": 1}}, condition="scribble", resolution=64).image == "data:pad"
    edited = {**values, "edited_map": "data:image/png;base64,map", "use_edited_map": True}
    unit = unit_from(edited, condition="canny", resolution=64)
    assert (unit.image, unit.preprocessor, unit.edited) == (edited["edited_map"], "none", True)
    assert unit_from({**edited, "use_edited_map": False}, condition="canny", resolution=64).image == "up.png"
    pose = unit_from({**edited, "pose_json": '{"people": []}'}, condition="pose", resolution=64)
    assert (pose.image, pose.edited) == ('{"people": []}', True)
    for name in [c.name for c in CONDITIONS.values() if not c.editor]:
        unit = unit_from({**edited, "preprocessor": None}, condition=name, resolution=64)
        assert (unit.image, unit.edited, unit.preprocessor) == ("up.png", False, None), name
