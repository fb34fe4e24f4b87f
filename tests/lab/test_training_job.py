"""A training run inside the app (the "Train one yourself" tab's backend), on the real offline base: the zero
convolutions are exactly 0 before the first step and leave it after, the probes and their pictures arrive, a run
stops when asked and leaves no file behind, one runs at a time, bad values are refused in words, and a generation
that arrives while it trains runs after at most the step under way."""

from __future__ import annotations

import numpy as np
import pytest

from controlnet_demo.errors import UserInputError
from controlnet_demo.lab.training.job import Trainer
from controlnet_demo.service import ControlNetService, final_output
from controlnet_demo.settings import Settings
from tests.builders import small_spec

SHORT = dict(steps=3, batch_size=2, probe_every=2, probe_samples=2)


@pytest.fixture(scope="module")
def trainer():
    return Trainer(device="cpu")


def _first(job, condition):
    """The first snapshot for which condition holds (the run goes on)."""
    return next(s for s in job.updates() if condition(s) or s.finished)


def test_a_short_run_shows_the_zero_convolutions_leave_0_the_loss_and_probes_with_their_pictures(trainer):
    job = trainer.start("me", **SHORT)
    snapshots = list(job.updates())
    end = snapshots[-1]
    assert end.state == "done", end.message
    # the offline base's connections (SD1.5 has 13), every one exactly 0: ControlNetModel.from_unet's zeros
    assert len(end.norms_at_start) == len(end.norms) > 1 and set(end.norms_at_start) == {0.0}
    after_one = next(s for s in snapshots if s.step == 1 and s.losses)
    assert min(after_one.norms) > 0  # every connection moved in the first step
    assert [step for step, _ in end.losses] == [1, 2, 3] and all(np.isfinite(v) for _, v in end.losses)
    assert [p[0] for p in end.probes] == [0, 2]  # before training, and every probe_every steps
    assert all(0 <= v <= 1 for p in end.probes for v in p[1:])
    assert len(end.samples) == SHORT["probe_samples"]
    prompt, control_map, picture = end.samples[0]
    assert prompt and control_map.shape == picture.shape == (64, 64, 3) and picture.dtype == np.uint8
    assert end.jump is not None and end.jump[:2] == (0, 2)
    assert not job.folder.exists()  # its checkpoint and model went with it


def test_a_run_stops_when_its_owner_asks_leaves_nothing_and_a_new_one_may_start(trainer):
    job = trainer.start("me", steps=1000, batch_size=2, probe_every=1000)
    assert _first(job, lambda s: s.losses).state == "training"
    assert not trainer.stop("somebody else")  # only whoever started it
    with pytest.raises(UserInputError, match="one runs at a time"):
        trainer.start("somebody else", **SHORT)
    assert trainer.stop("me")
    end = job.wait(120)
    assert end.state == "stopped" and 1 <= end.step < 1000
    assert not job.folder.exists()
    assert not trainer.stop("me")  # nothing of mine is going
    assert trainer.start("somebody else", **SHORT).wait(300).state == "done"


@pytest.mark.parametrize(
    "values, says",
    [
        (dict(steps=0), "Steps must be between 1 and 3000"),
        (dict(batch_size="lots"), "Batch size must be a number"),
        (dict(probe_every=2.5), "Probe every must be a whole number"),
        (dict(condition="segmentation"), "one of the world's maps: canny"),
    ],
)
def test_bad_values_are_refused_in_words_before_anything_runs(trainer, values, says):
    with pytest.raises(UserInputError, match=says):
        trainer.start("me", **{**SHORT, **values})


def test_a_generation_that_arrives_while_it_trains_runs_and_training_goes_on_after(tmp_path, astronaut):
    service = ControlNetService(Settings(preset="tiny", preview_every=0), output_dir=str(tmp_path))
    trainer = Trainer(device="cpu", turn=service.priority.background)
    job = trainer.start("me", steps=1000, batch_size=2, probe_every=1000)
    try:
        _first(job, lambda s: s.losses)
        out = final_output(service.generate(small_spec(astronaut)))  # not after the 1000 steps: between two
        assert len(out.files) == 1 and not job.snapshot.finished
        after = job.snapshot.step
        assert _first(job, lambda s: s.step > after).state == "training"  # and it trains on
    finally:
        trainer.stop("me")
        job.wait(120)
