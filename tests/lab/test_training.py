"""The paper's training recipe on tiny real models: zero convs start at zero and leave it, the base stays locked;
and `python -m controlnet_demo train ...` end to end (a few steps of the "tiny" sizes): exact resume, metrics,
diffusers-layout outputs, fill50k-style data, the exported pipeline."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from controlnet_demo.cli import main
from controlnet_demo.engine import zero_convolutions
from controlnet_demo.errors import UserInputError
from controlnet_demo.lab import training
from controlnet_demo.lab.training import drop_prompts, lock, noise_loss
from controlnet_demo.models import architectures as tiny

FAST = ["--resolution", "32", "--batch-size", "2", "--device", "cpu", "--quiet"]


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 16, 16, generator=g)
    text = torch.randn(2, 77, 32, generator=g)
    condition = (torch.rand(2, 3, 32, 32, generator=g) > 0.8).float()  # sparse "edges" in [0, 1]
    return latents, text, condition, g


def test_one_optimizer_step_moves_zero_convs_off_zero_and_leaves_base_bit_identical():
    from diffusers import DDPMScheduler

    unet = lock(tiny.tiny_unet(seed=0))
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    controlnet = tiny.tiny_controlnet(unet, zero_convs="zero").train()
    assert all(torch.count_nonzero(p) == 0 for z in zero_convolutions(controlnet) for p in z.parameters())

    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=1e-4)
    latents, text, condition, g = _batch()
    scheduler = DDPMScheduler.from_config(tiny.SD_SCHEDULER_CONFIG)
    loss = noise_loss(unet, scheduler, latents, text, g, controlnet, condition)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in unet.parameters())  # nothing computed or stored for the locked model
    optimizer.step()

    assert all(torch.count_nonzero(z.weight) > 0 for z in zero_convolutions(controlnet))
    after = unet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_at_initialisation_the_controlnet_adds_exactly_nothing():
    unet = tiny.tiny_unet(seed=0).eval()
    controlnet = tiny.tiny_controlnet(unet, zero_convs="zero")
    latents, text, condition, _ = _batch(1)
    t = torch.tensor([500, 500])
    with torch.no_grad():
        down, mid = controlnet(latents, t, encoder_hidden_states=text, controlnet_cond=condition, return_dict=False)
        assert all(torch.count_nonzero(r) == 0 for r in (*down, mid))
        plain = unet(latents, t, encoder_hidden_states=text).sample
        steered = unet(
            latents,
            t,
            encoder_hidden_states=text,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
    assert torch.equal(plain, steered)


def test_prompt_dropout_empties_about_the_requested_share():
    prompts = [f"prompt {i}" for i in range(2000)]
    dropped = drop_prompts(prompts, 0.5, torch.Generator().manual_seed(0))
    share = sum(p == "" for p in dropped) / len(prompts)
    assert 0.45 < share < 0.55
    assert drop_prompts(prompts, 0.0, torch.Generator().manual_seed(0)) == prompts


# --- the command end to end ---------------------------------------------------------------------------------------


def _metrics(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny base trained by the command itself: `train vae`, then `train base` on it (2 steps each)."""
    root = tmp_path_factory.mktemp("train")
    assert main(["train", "vae", "--model-size", "tiny", "--out", str(root / "vae"), "--steps", "2", *FAST]) == 0
    assert (
        main(
            [
                "train",
                "base",
                "--model-size",
                "tiny",
                "--vae",
                str(root / "vae"),
                "--out",
                str(root / "base"),
                "--steps",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    return root / "base"


@pytest.fixture
def captured(monkeypatch):
    """The Task objects `train` builds, kept for inspection after the run."""
    tasks = []
    for name, kind in training.TASKS.items():

        def make(*args, _make=kind.make):
            tasks.append(_make(*args))
            return tasks[-1]

        monkeypatch.setitem(training.TASKS, name, dataclasses.replace(kind, make=make))
    return tasks


@pytest.mark.slow
def test_train_vae_and_base_write_diffusers_models_and_metrics(base):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    vae = AutoencoderKL.from_pretrained(base.parent / "vae")
    assert math.isfinite(vae.config.scaling_factor) and vae.config.scaling_factor > 0  # latents scaled to unit std
    assert UNet2DConditionModel.from_pretrained(base, subfolder="unet").config.cross_attention_dim == 32
    pipe = StableDiffusionPipeline.from_pretrained(base)  # the base is a whole pipeline: `--base` for ControlNets
    assert torch.equal(pipe.vae.decoder.conv_out.weight, vae.decoder.conv_out.weight)  # the VAE stayed locked
    for folder in (base.parent / "vae", base):
        rows = _metrics(folder)
        assert [r["step"] for r in rows] == [1, 2]
        assert all(
            math.isfinite(r["loss"]) and r["lr"] > 0 and r["seconds_per_step"] > 0 and r["peak_memory_mb"] > 0
            for r in rows
        )


@pytest.mark.slow
def test_train_controlnet_locks_the_base_and_moves_only_the_copy(base, tmp_path, captured):
    from diffusers import ControlNetModel

    out = tmp_path / "canny"
    assert (
        main(
            [
                "train",
                "controlnet",
                "--condition",
                "canny",
                "--base",
                str(base),
                "--out",
                str(out),
                "--steps",
                "2",
                *FAST,
            ]
        )
        == 0
    )

    task = captured[0]
    fresh = training.load_base(str(base))
    for name, module in task.locked.items():
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())
        reference = getattr(fresh, name).state_dict()
        assert all(torch.equal(v, reference[k]) for k, v in module.state_dict().items()), name
    net = task.trainable["controlnet"]
    assert all(torch.count_nonzero(z.weight) > 0 for z in zero_convolutions(net))  # left zero after step 1
    assert all(math.isfinite(r["loss"]) for r in _metrics(out))

    loaded = ControlNetModel.from_pretrained(out)
    assert loaded.config.block_out_channels == fresh.unet.config.block_out_channels
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())


@pytest.mark.slow
def test_resume_after_an_interruption_continues_exactly(base, tmp_path, monkeypatch):
    args = ["train", "controlnet", "--base", str(base), "--steps", "4", "--checkpoint-every", "2", *FAST]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0

    arrays = training.Examples.arrays

    def interrupted(self, step, *rest):  # Ctrl-C in step 4: step 3 is done and logged, the checkpoint is step 2's
        if step == 3:
            raise KeyboardInterrupt
        return arrays(self, step, *rest)

    monkeypatch.setattr(training.Examples, "arrays", interrupted)
    assert main([*args, "--out", str(tmp_path / "resumed")]) == 130
    monkeypatch.setattr(training.Examples, "arrays", arrays)
    assert main([*args, "--out", str(tmp_path / "resumed"), "--resume"]) == 0

    straight = _weights(tmp_path / "straight" / "diffusion_pytorch_model.safetensors")
    resumed = _weights(tmp_path / "resumed" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert [r["loss"] for r in _metrics(tmp_path / "resumed")] == [r["loss"] for r in _metrics(tmp_path / "straight")]

    assert main([*args, "--out", str(tmp_path / "resumed")]) == 2  # no silent restart over a run's checkpoints
    with pytest.raises(UserInputError, match="seed"):  # another run's checkpoint is refused
        training.train(
            training.TrainConfig(
                kind="controlnet",
                base=str(base),
                out=str(tmp_path / "resumed"),
                resolution=32,
                batch_size=2,
                steps=5,
                seed=1,
                resume=True,
            ),
            progress=False,
        )


@pytest.mark.slow
def test_batches_made_by_workers_and_a_run_stopped_by_max_minutes_then_resumed_train_the_same(base, tmp_path):
    args = ["train", "controlnet", "--base", str(base), "--steps", "3", *FAST]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    stopped = tmp_path / "stopped"
    assert main([*args, "--out", str(stopped), "--workers", "2", "--max-minutes", "1e-6"]) == 0  # stops after step 1
    assert [r["step"] for r in _metrics(stopped)] == [1]
    assert [p.name for p in (stopped / "checkpoints").iterdir()] == ["step-00000001"]
    assert (stopped / "diffusion_pytorch_model.safetensors").exists()  # the model as it was, loadable
    assert main([*args, "--out", str(stopped), "--workers", "2", "--resume"]) == 0

    straight = _weights(tmp_path / "straight" / "diffusion_pytorch_model.safetensors")
    resumed = _weights(stopped / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert [r["loss"] for r in _metrics(stopped)] == [r["loss"] for r in _metrics(tmp_path / "straight")]


@pytest.mark.slow
def test_train_controlnet_reads_a_fill50k_layout_folder(base, tmp_path):
    data = tmp_path / "fill50k"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):  # not square and not the training size: centre-cropped and resized
        for sub, image in (("source", (rng.random((40, 48)) > 0.8) * 255), ("target", rng.random((40, 48, 3)) * 255)):
            (data / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(data / sub / f"{i}.png"), image.astype(np.uint8))
        lines.append(json.dumps({"source": f"source/{i}.png", "target": f"target/{i}.png", "prompt": f"circle {i}"}))
    (data / "prompt.json").write_text("\n".join(lines) + "\n")

    out = tmp_path / "net"
    assert (
        main(
            ["train", "controlnet", "--base", str(base), "--data", str(data), "--out", str(out), "--steps", "2", *FAST]
        )
        == 0
    )
    assert len(_metrics(out)) == 2 and (out / "diffusion_pytorch_model.safetensors").exists()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_gradient_checkpointing_train(base, tmp_path, captured, precision):
    config = training.TrainConfig(
        kind="controlnet",
        base=str(base),
        out=str(tmp_path),
        resolution=32,
        batch_size=2,
        steps=1,
        mixed_precision=precision,
        gradient_checkpointing=True,
        device="cpu",
    )
    training.train(config, progress=False)
    task = captured[0]
    assert task.locked["unet"].dtype == training.DTYPES[precision]  # the locked base is stored in half precision
    assert task.trainable["controlnet"].dtype == torch.float32  # the trained weights stay float32
    assert math.isfinite(_metrics(tmp_path)[0]["loss"])


@pytest.mark.slow
def test_export_loads_in_the_controlnet_pipeline(base, tmp_path):
    from diffusers import ControlNetModel, DDIMScheduler, StableDiffusionControlNetPipeline

    net = tmp_path / "canny"
    assert main(["train", "controlnet", "--base", str(base), "--out", str(net), "--steps", "1", *FAST]) == 0
    folder = tmp_path / "pipeline"
    assert (
        main(
            [
                "train",
                "export",
                "--base",
                str(base),
                "--vae",
                str(base / "vae"),
                "--controlnet",
                f"canny={net}",
                "--out",
                str(folder),
                "--dtype",
                "fp16",
            ]
        )
        == 0
    )

    stored = [
        *_weights(folder / "controlnet-canny" / "diffusion_pytorch_model.safetensors").values(),
        *_weights(folder / "unet" / "diffusion_pytorch_model.safetensors").values(),
    ]
    assert all(v.dtype == torch.float16 for v in stored)
    controlnet = ControlNetModel.from_pretrained(folder / "controlnet-canny")  # float32 again: CPU inference
    pipe = StableDiffusionControlNetPipeline.from_pretrained(folder, controlnet=controlnet)  # as a user writes it
    assert isinstance(pipe.scheduler, DDIMScheduler) and pipe.safety_checker is None
    image = pipe(
        "a red circle",
        image=torch.zeros(1, 3, 32, 32),
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert image.shape == (1, 32, 32, 3) and np.isfinite(image).all()


@pytest.mark.parametrize(
    "option, message",
    [
        ([], "could not be loaded"),
        (["--empty-prompt-share", "1.5"], "is a share"),
        (["--condition", "seg"], "no 'seg'"),
        (["--world-warp", "-0.1"], "is a share"),
        (["--init", "no-such-controlnet"], "not a ControlNet folder"),
        (["--world-warp", "0.5", "--data", "folder"], "does nothing with --data"),
        (["--workers", "-1"], "0 or more"),
        (["--max-minutes", "0"], "more than 0"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, capsys, option, message):
    args = ["train", "controlnet", "--base", str(tmp_path / "nothing"), "--out", str(tmp_path), *option, *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_train_controlnet_logs_controllability_for_the_convergence_curve(base, tmp_path):
    out = tmp_path / "curve"
    assert (
        main(
            [
                "train",
                "controlnet",
                "--condition",
                "canny",
                "--base",
                str(base),
                "--out",
                str(out),
                "--steps",
                "2",
                "--eval-every",
                "1",
                "--eval-samples",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    rows = _metrics(out)
    curve = [(r["step"], r["controllability"]) for r in rows if "controllability" in r]
    assert [step for step, _ in curve] == [0, 1, 2]  # before the first step, then every step
    assert all(0.0 <= c["matched"] <= 1.0 and 0.0 <= c["shuffled"] <= 1.0 and c["ratio"] >= 0.0 for _, c in curve)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]

    # the export ships the curve with the ControlNet, and the app's "How it works" tab reads it from there
    from controlnet_demo.models.curves import CURVE_FILE
    from controlnet_demo.service import ControlNetService
    from controlnet_demo.settings import Settings
    from controlnet_demo.ui.how_tab import convergence_frame

    folder = tmp_path / "pipeline"
    assert main(["train", "export", "--base", str(base), "--controlnet", f"canny={out}", "--out", str(folder)]) == 0
    shipped = json.loads((folder / "controlnet-canny" / CURVE_FILE).read_text())
    assert shipped["steps"] == 2 and [p[0] for p in shipped["controllability"]] == [0, 1, 2]
    assert shipped["controllability"][2][1:] == [round(curve[2][1][k], 4) for k in ("matched", "shuffled")]
    demo = ControlNetService(
        Settings(preset="tiny", base_model=str(folder), controlnets={"canny": str(folder / "controlnet-canny")})
    )
    frame = convergence_frame(demo.training_curves())
    assert len(frame) == 6 and set(frame["series"]) == {"canny matched", "canny shuffled"}


@pytest.mark.slow
def test_train_base_init_continues_from_an_exported_pipeline(base, tmp_path):
    from diffusers import UNet2DConditionModel

    out = tmp_path / "continued"
    assert (
        main(
            [
                "train",
                "base",
                "--model-size",
                "tiny",
                "--vae",
                str(base.parent / "vae"),
                "--init",
                str(base),
                "--out",
                str(out),
                "--steps",
                "1",
                "--lr",
                "1e-12",
                *FAST,
            ]
        )
        == 0
    )
    start = UNet2DConditionModel.from_pretrained(base, subfolder="unet").state_dict()
    after = UNet2DConditionModel.from_pretrained(out, subfolder="unet").state_dict()
    assert all(torch.allclose(start[k], after[k], atol=1e-6) for k in start)  # its weights, not random ones


@pytest.mark.slow
def test_train_controlnet_init_goes_on_from_a_trained_controlnet_on_a_warped_world(base, tmp_path):
    from diffusers import ControlNetModel

    first, second = tmp_path / "first", tmp_path / "second"
    probes = ["--eval-every", "1", "--eval-samples", "2"]
    assert main(["train", "controlnet", "--base", str(base), "--out", str(first), "--steps", "1", *probes, *FAST]) == 0
    assert (
        main(
            [
                "train",
                "controlnet",
                "--base",
                str(base),
                "--out",
                str(second),
                "--init",
                str(first),
                "--world-warp",
                "1",
                "--steps",
                "2",
                "--lr",
                "1e-12",
                *probes,
                *FAST,
            ]
        )
        == 0
    )
    start = ControlNetModel.from_pretrained(first).state_dict()
    after = ControlNetModel.from_pretrained(second).state_dict()
    assert any(torch.count_nonzero(v) for k, v in start.items() if k.startswith("controlnet_down_blocks"))
    assert all(torch.allclose(start[k], after[k], atol=1e-6) for k in start)  # its weights, not a fresh copy

    # the curve the export ships tells the whole story: the first run's probes, then the second's after them
    own, whole = training.training_curve(first), training.training_curve(second)
    assert whole["steps"] == 3 and [p[0] for p in whole["controllability"]] == [0, 1, 2, 3]
    assert whole["controllability"][:2] == own["controllability"] and whole["stages"] == [[1, 1.0, None]]
    assert own["stages"] == []
    moved = tmp_path / "base-trained-on"  # going on with another base is a stage of its own, named
    shutil.copytree(base, moved)
    third = tmp_path / "third"
    assert (
        main(
            [
                "train",
                "controlnet",
                "--base",
                str(moved),
                "--out",
                str(third),
                "--init",
                str(second),
                "--world-warp",
                "1",
                "--steps",
                "1",
                *probes,
                *FAST,
            ]
        )
        == 0
    )
    assert training.training_curve(third)["stages"] == [[1, 1.0, None], [3, 1.0, str(moved)]]
    from controlnet_demo.ui.how_tab import stages_text

    shown = stages_text(training.training_curve(third)["stages"])
    assert shown == (
        "; from step 1 on, on scenes with 100% of their shapes drawn irregular; from step 3 on, on top of a base "
        "model trained further"
    )
    assert str(moved) not in shown and "--" not in shown  # a learner's words: no run folder, no flag

    config = training.TrainConfig(kind="controlnet", out=str(second), world_warp=1.0, resolution=32)
    warped, plain = (
        training.Examples(config, True),
        training.Examples(dataclasses.replace(config, world_warp=0.0), True),
    )
    assert warped.world.warp == 1.0 and plain.world.warp == 0.0
    differ = [not np.array_equal(warped[i][0], plain[i][0]) for i in range(8)]
    assert sum(differ) >= 6  # the stream draws the warped world (equal only where a scene has no shape)


def test_converged_at_is_the_first_step_from_which_control_holds():
    from controlnet_demo.lab.training import converged_at, largest_jump

    probes = [[0, 0.05, 0.05], [100, 0.30, 0.06], [200, 0.10, 0.06], [300, 0.40, 0.07], [400, 0.45, 0.06]]
    assert converged_at(probes) == 300  # 100 passed once, then fell back: not yet converged there
    assert converged_at(probes[:3]) is None
    assert converged_at([[0, 0.2, 0.01]]) == 0  # shuffled floored at 0.05: 0.2 >= 3 x 0.05
    assert largest_jump(probes) == [200, 300, 0.3]
    assert largest_jump(probes[:1]) is None


@pytest.mark.slow
def test_a_v_prediction_zero_snr_base_keeps_its_schedule_through_controlnet_and_export(base, tmp_path):
    from diffusers import DDPMScheduler

    from controlnet_demo.engine import Engine, Request, make_scheduler
    from controlnet_demo.lab.training import load_base, noise_loss

    vbase = tmp_path / "vbase"
    assert (
        main(
            [
                "train",
                "base",
                "--model-size",
                "tiny",
                "--vae",
                str(base / "vae"),
                "--out",
                str(vbase),
                "--steps",
                "1",
                "--v-prediction",
                *FAST,
            ]
        )
        == 0
    )
    config = load_base(str(vbase)).scheduler.config
    assert (config.prediction_type, config.rescale_betas_zero_snr, config.timestep_spacing) == (
        "v_prediction",
        True,
        "trailing",
    )
    net = tmp_path / "canny"
    assert main(["train", "controlnet", "--base", str(vbase), "--out", str(net), "--steps", "1", *FAST]) == 0
    folder = tmp_path / "pipeline"
    assert main(["train", "export", "--base", str(vbase), "--controlnet", f"canny={net}", "--out", str(folder)]) == 0
    assert load_base(str(folder)).scheduler.config.prediction_type == "v_prediction"

    # the loss's target follows the scheduler: v for a v-prediction schedule, the noise otherwise
    latents, text, _, g = _batch()

    class Echo(torch.nn.Module):  # predicts its input: the loss then measures the target's distance to it
        def forward(self, x, t, encoder_hidden_states=None, return_dict=False, **kw):
            return (x,)

    eps, v = (DDPMScheduler.from_config(dict(config, prediction_type=p)) for p in ("epsilon", "v_prediction"))
    assert noise_loss(Echo(), eps, latents, text, torch.Generator().manual_seed(0)) != noise_loss(
        Echo(), v, latents, text, torch.Generator().manual_seed(0)
    )

    # and the app's schedulers sample from it (the last step starts from pure noise: no NaN)
    import dataclasses

    from controlnet_demo.models.loading import ModelStore, Resolved
    from controlnet_demo.models.presets import OFFLINE

    preset = dataclasses.replace(OFFLINE, base=str(folder), folder=folder)
    store = ModelStore(Resolved(preset, False, "test"), torch.device("cpu"), torch.float32)
    engine = Engine(store.base, store.controlnets, store.device, store.dtype)
    for name in ("UniPC", "Euler a", "DDIM"):
        assert make_scheduler(name, engine.base.scheduler.config).config.rescale_betas_zero_snr
        out = engine.generate(Request("a red circle", [], "", 3, 5.0, 0, 1, 32, 32, name))
        assert np.isfinite(out.images).all()


@pytest.mark.slow
def test_gradient_accumulation_and_a_learning_rate_schedule_from_diffusers(base, tmp_path):
    out = tmp_path / "scheduled"
    args = [
        "--steps",
        "4",
        "--gradient-accumulation",
        "2",
        "--lr",
        "1e-4",
        "--lr-scheduler",
        "cosine",
        "--lr-warmup-steps",
        "2",
    ]
    assert main(["train", "controlnet", "--base", str(base), "--out", str(out), *args, *FAST]) == 0
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # optimizer steps, each of 2 batches
    # the rate each step ran at, get_scheduler("cosine", warm-up 2 of 4 steps): up linearly, then half a cosine down
    assert [round(r["lr"] / 1e-4, 6) for r in rows] == [0.0, 0.5, 1.0, 0.5]
    resumed = dict(
        kind="controlnet",
        base=str(base),
        out=str(out),
        resolution=32,
        batch_size=2,
        steps=6,
        gradient_accumulation=2,
        lr=1e-4,
        lr_scheduler="cosine",
        lr_warmup_steps=2,
        resume=True,
        device="cpu",
    )
    with pytest.raises(UserInputError, match="lr_scheduler"):  # a resumed run keeps its own schedule
        training.train(training.TrainConfig(**{**resumed, "lr_scheduler": "linear"}), progress=False)
    with pytest.raises(UserInputError, match="cosine schedule .* runs over --steps 4"):  # its length is fixed too
        training.train(training.TrainConfig(**resumed), progress=False)


@pytest.mark.slow
def test_train_lcm_trains_only_a_lora_that_the_engine_loads_and_its_consistency_target_is_exact(
    base, tmp_path, captured
):
    """`train lcm`: the teacher and the base weights stay as they were, only LoRA weights change; its output
    file loads into the app's engine as a few-step adapter that changes the image and switches off again."""
    from diffusers import StableDiffusionPipeline

    from controlnet_demo.engine import Engine, Request
    from controlnet_demo.lab.training.consistency import DDIMSolver, boundary_scalings
    from controlnet_demo.models.loading import load_lora
    from controlnet_demo.models.presets import LCM_LORA_FILE

    out = tmp_path / "lcm"
    assert (
        main(["train", "lcm", "--base", str(base), "--out", str(out), "--steps", "2", "--lora-rank", "4", *FAST]) == 0
    )
    [task] = captured
    pipe = StableDiffusionPipeline.from_pretrained(base)
    teacher_before = pipe.unet.state_dict()
    assert all(torch.equal(teacher_before[k], v) for k, v in task.locked["teacher"].state_dict().items())
    student = task.trainable["unet"].state_dict()
    for k, v in teacher_before.items():  # the student's base weights are the teacher's (peft renames them)
        assert torch.equal(v, student.get(k, student.get(k.replace(".weight", ".base_layer.weight"), v)))
    trainable = [n for n, p in task.trainable["unet"].named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert [r["step"] for r in _metrics(out)] == [1, 2]

    load_lora(pipe, str(out), LCM_LORA_FILE, "lcm")
    engine = Engine(pipe, {}, torch.device("cpu"), torch.float32, loras={"lcm": "lcm"})
    ask = dict(prompt="a red circle", units=[], steps=2, width=32, height=32, seed=3)
    plain = engine.generate(Request(**ask)).images
    few = engine.generate(Request(**ask, scheduler="LCM", guidance_scale=1.0, lora="lcm")).images
    assert np.abs(plain - few).max() > 1e-4 and (engine.generate(Request(**ask)).images == plain).all()

    # the recipe's pieces: f(z, 0) = z at the boundary, and the solver's grid ends at the last training timestep
    c_skip, c_out = boundary_scalings(torch.tensor([0.0]))
    assert (float(c_skip), float(c_out)) == (1.0, 0.0)
    solver = DDIMSolver(torch.linspace(0.99, 0.01, 1000), 1000, 50)
    assert solver.timesteps[0] == 19 and solver.timesteps[-1] == 999 and solver.skip == 20


@pytest.mark.slow
def test_train_on_two_processes_reads_each_share_once_and_matches_one_process_with_the_same_global_batch(
    base, tmp_path
):
    """`torchrun --nproc_per_node 2 -m controlnet_demo train ...` (gloo on the CPU): both processes read their own
    share of each step's examples, both hold the same weights after every step (the gradients averaged), the model is
    written once, and the loss follows one process with the same global
    batch (their noise differs, so within a tolerance)."""
    import subprocess
    import sys

    from controlnet_demo.paths import REPO_ROOT

    args = ["train", "controlnet", "--base", str(base), "--steps", "3", "--resolution", "32", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    two = tmp_path / "two"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "controlnet_demo",
        ]
        + [*args, "--batch-size", "4", "--quiet", "--out", str(two)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    one = tmp_path / "one"
    assert main([*args, "--batch-size", "8", "--quiet", "--out", str(one)]) == 0

    assert (two / "diffusion_pytorch_model.safetensors").is_file()
    steps_two, steps_one = _metrics(two), _metrics(one)
    assert [(r["num_processes"], r["global_batch_size"]) for r in steps_two] == [(2, 8)] * 3
    assert [(r["num_processes"], r["global_batch_size"]) for r in steps_one] == [(1, 8)] * 3
    config = training.TrainConfig(kind="controlnet", out=str(two), resolution=32, batch_size=4)
    data = training.Examples(config, with_condition=True)
    for step, row in enumerate(steps_two):  # process p of step s read the stream's batch 2s + p: its own half
        expected = [float(data.batch(2 * step + p, 4, torch.device("cpu"))["pixels"].double().sum()) for p in (0, 1)]
        assert row["batch_checksums"] == expected and expected[0] != expected[1]
        first, second = row["weights_checksums"]  # the gradients averaged: both processes hold the same model
        assert first == second, row
    mean_two, mean_one = (np.mean([r["loss"] for r in rows]) for rows in (steps_two, steps_one))
    assert abs(mean_two - mean_one) < 0.1 * mean_one, (mean_two, mean_one)


def test_each_process_reads_its_own_share_and_together_what_one_process_reads():
    from controlnet_demo.lab.training.data import shard

    assert list(shard(3, 6)) == [3, 4, 5]  # one process: the stream as it is
    two = [list(shard(3, 6, p, 2)) for p in (0, 1)]
    assert two == [[6, 8, 10], [7, 9, 11]]  # micro-step s: batches 2s and 2s+1, i.e. one process's batch s twice as big
