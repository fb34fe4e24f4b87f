"""Few-step speeds and live frames through the service: the speed's own steps and sampler, the full path unchanged,
one waiting frame per client, and full-quality jobs before live frames."""

from __future__ import annotations

import threading

import pytest

from controlnet_demo.errors import UserInputError
from controlnet_demo.service import final_output, read_parameters
from controlnet_demo.service.guards import Priority
from controlnet_demo.service.live import LiveLane
from tests.apiclient import counting_steps, wait_for
from tests.builders import small_spec


def test_a_few_step_speed_brings_its_steps_guidance_and_sampler_and_the_png_records_it(service, astronaut):
    few = service.preset.few_step["fast"]
    out = final_output(service.generate(small_spec(astronaut, steps=None, guidance_scale=None, speed="fast")))
    assert (out.params["steps"], out.params["guidance_scale"]) == (few.steps, few.guidance)
    assert out.params["scheduler"] == few.scheduler and out.params["speed"] == "fast"
    assert read_parameters(out.files[0])["speed"] == "fast"


def test_the_full_path_is_the_same_image_whether_or_not_a_few_step_request_ran_between(service, astronaut):
    before = final_output(service.generate(small_spec(astronaut))).result.images
    final_output(service.generate(small_spec(astronaut, speed="fast")))
    after = final_output(service.generate(small_spec(astronaut))).result.images
    assert (before == after).all()


def test_an_unknown_speed_is_refused_naming_the_offered_ones(service, astronaut):
    with pytest.raises(UserInputError, match="this model offers: full, fast"):
        service.prepare(small_spec(astronaut, speed="turbo"))


def test_a_live_frame_is_a_few_step_request_with_a_control_check(service, astronaut):
    out = service.live(small_spec(astronaut, steps=None, speed=service.preset.live_speed), "a")
    assert out.params["speed"] == "fast" and out.params["steps"] == service.preset.few_step["fast"].steps
    assert [c["condition"] for c in out.params["control_check"]] == ["canny"]
    assert read_parameters(out.files[0])["control_check"] == out.params["control_check"]


def test_the_pages_frame_comes_unchecked_and_is_checked_once_the_drawing_pauses(service, astronaut):
    spec = small_spec(astronaut, steps=None, speed=service.preset.live_speed)
    out = service.live(spec, "b", check=False)
    [later] = out.params["control_check"]  # the same keys as a checked one's, no score yet, and why
    assert later["score"] is None and later["condition"] == "canny" and "not checked yet" in later["warning"]
    assert read_parameters(out.files[0])["control_check"] == out.params["control_check"]
    [check] = service.check_paused("b", pause_s=0.01)
    assert check.condition == "canny" and check.score is not None
    assert service.check_paused("b", pause_s=0.01) is None  # checked once


def test_a_newer_frame_asked_for_during_the_pause_is_checked_instead(service, astronaut):
    spec = small_spec(astronaut, steps=None, speed=service.preset.live_speed)
    service.live(spec, "c", check=False)
    answer = []
    waiting = threading.Thread(target=lambda: answer.append(service.check_paused("c", pause_s=600)))
    waiting.start()
    service.live(spec, "c", check=False)  # the next stroke: the pause is over, the older frame goes unchecked
    waiting.join(timeout=600)
    assert answer == [None]
    [check] = service.check_paused("c", pause_s=0.01)  # the newer frame, once its own pause passed
    assert check.condition == "canny"


def test_a_newer_frame_replaces_the_waiting_one_of_its_client_and_other_clients_keep_theirs():
    release = threading.Event()
    ran = []

    def run(job):
        release.wait(10)
        ran.append(job)
        return job

    lane = LiveLane(run)
    first = lane.submit("a", "a1")  # runs (blocked until released)
    assert wait_for(lambda: lane.running == "a")
    waiting = lane.submit("a", "a2")
    other = lane.submit("b", "b1")
    newest = lane.submit("a", "a3")  # replaces a2, keeps its place before b1
    assert waiting.result(timeout=1) is None  # answered at once: its picture is out of date
    assert lane.pending() == {"a": 2, "b": 1}  # one running and one waiting, at most
    release.set()
    assert (first.result(10), newest.result(10), other.result(10)) == ("a1", "a3", "b1")
    assert ran == ["a1", "a3", "b1"] and lane.superseded == 1


def test_closing_the_lane_lets_the_running_frame_finish_and_answers_the_rest_with_none():
    """At exit (atexit) the lane waits for the frame inside torch (cut off there, the process aborts) and runs no
    more."""
    release, ran = threading.Event(), []

    def run(job):
        release.wait(10)
        ran.append(job)
        return job

    lane = LiveLane(run)
    running = lane.submit("a", "a1")
    assert wait_for(lambda: lane.running == "a")
    waiting = lane.submit("b", "b1")
    closer = threading.Thread(target=lane.close)
    closer.start()
    assert waiting.result(timeout=10) is None
    assert closer.is_alive()  # still waiting for the running frame
    release.set()
    closer.join(10)
    assert not closer.is_alive() and running.result(1) == "a1" and ran == ["a1"]
    assert lane.submit("c", "c1").result(timeout=1) is None and ran == ["a1"]


def test_a_flood_of_clients_keeps_only_the_newest_frames_waiting():
    release = threading.Event()
    lane = LiveLane(lambda job: release.wait(10) and job, max_waiting=3)
    running = lane.submit("first", 0)
    assert wait_for(lambda: lane.running == "first")
    frames = [lane.submit(f"c{k}", k) for k in range(6)]
    assert [f.result(timeout=1) for f in frames[:3]] == [None] * 3  # the oldest, answered at once
    assert len(lane.pending()) == 4  # the one running and the 3 newest waiting
    release.set()
    assert running.result(10) == 0 and [f.result(10) for f in frames[3:]] == [3, 4, 5]


def test_a_live_frame_waits_while_a_full_job_waits_or_runs():
    priority = Priority()
    order = []
    full_in = threading.Event()
    finish_full = threading.Event()

    def full_job():
        with priority.full():
            full_in.set()
            finish_full.wait(10)
            order.append("full")

    def frame():
        with priority.live():
            order.append("live")

    threading.Thread(target=full_job).start()
    assert full_in.wait(10)
    live = threading.Thread(target=frame)
    live.start()
    live.join(0.3)
    assert order == []  # the frame has not run past the full job
    finish_full.set()
    live.join(10)
    assert order == ["full", "live"]


def test_with_two_engines_a_live_frame_runs_beside_one_full_job_and_waits_behind_two():
    priority = Priority(engines=2)
    release = threading.Event()

    def full_job(entered):
        with priority.full():
            entered.set()
            release.wait(10)

    first = threading.Event()
    threading.Thread(target=full_job, args=(first,)).start()
    assert first.wait(10)
    with priority.live():  # the second engine is free: the frame does not wait
        pass
    second = threading.Event()
    threading.Thread(target=full_job, args=(second,)).start()
    assert second.wait(10)
    ran = threading.Event()

    def frame():
        with priority.live():
            ran.set()

    threading.Thread(target=frame).start()
    assert not ran.wait(0.3)  # both engines are taken by full jobs
    release.set()
    assert ran.wait(10)


def test_a_full_job_waits_for_at_most_the_one_frame_on_the_engine(service, astronaut):
    """Live frames from several clients keep coming; a full job that arrives runs after the frame that is on the
    engine, before any frame still waiting."""
    with counting_steps(service, pause_s=0.05) as steps:
        frames = [
            threading.Thread(target=service.live, args=(small_spec(astronaut, speed="fast", seed=k), f"c{k}"))
            for k in range(4)
        ]
        for t in frames:
            t.start()
        assert wait_for(lambda: len(steps) > 0)  # a frame is on the engine
        ran_before = service.live_lane.ran
        full = final_output(service.generate(small_spec(astronaut, steps=3)))
        frames_meanwhile = service.live_lane.ran - ran_before
        for t in frames:
            t.join(60)
    assert full.params["speed"] == "full"
    assert frames_meanwhile <= 1


def test_background_work_waits_for_jobs_and_frames_and_a_job_waits_for_one_piece_of_it_at_most():
    priority = Priority()
    inside, release = threading.Event(), threading.Event()

    def piece():  # one training step
        with priority.background():
            inside.set()
            release.wait(10)

    threading.Thread(target=piece, daemon=True).start()
    assert inside.wait(10)
    started, finish = threading.Event(), threading.Event()

    def job():
        with priority.full():
            started.set()
            finish.wait(10)

    threading.Thread(target=job, daemon=True).start()
    assert not started.wait(0.3)  # the piece under way goes first ...
    release.set()
    assert started.wait(10)  # ... and then the job, before any further piece
    next_piece = threading.Event()

    def later():
        with priority.background():
            next_piece.set()

    threading.Thread(target=later, daemon=True).start()
    assert not next_piece.wait(0.3)  # a job holds an engine: no further piece
    finish.set()
    assert next_piece.wait(10)
