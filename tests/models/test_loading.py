"""Model resolution and loading, pinned on tiny real models saved the way users get SD1.5: in a hub cache.

huggingface_hub and diffusers read HF_HUB_CACHE / HF_HUB_OFFLINE / HF_ENDPOINT into module constants when they
are imported, and this test process imported them long ago (conftest, test_engine). So whatever depends on
those variables runs in a fresh interpreter started with them set, exactly as a user's process would be;
everything that doesn't (local folders, overrides, corrupt files, devices) runs in-process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from controlnet_demo.conditions import CONDITIONS as TABLE
from controlnet_demo.errors import ModelUnavailableError, UserInputError
from controlnet_demo.models import architectures as tiny
from controlnet_demo.models.devices import pick_device
from controlnet_demo.models.loading import ModelStore, Resolved, apply_overrides, resolve_preset
from controlnet_demo.models.presets import SD15, offline_fallback
from controlnet_demo.paths import REPO_ROOT
from controlnet_demo.settings import Settings

ROOT = REPO_ROOT
CONDITIONS = tuple(SD15.controlnets)  # every condition of the table the sd15 family serves


def _fingerprint(net) -> float:
    """Sum of the condition encoder's weights: tells the ControlNets (different seeds) apart."""
    return float(sum(p.double().sum() for p in net.controlnet_cond_embedding.parameters()))


def _snapshot(cache: Path, repo_id: str) -> Path:
    """The folder huggingface_hub would download `repo_id` into, with refs/main pointing at it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()  # any 40-hex commit id
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)  # no newline: the hub writes none and reads it verbatim
    return repo / "snapshots" / commit


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory) -> dict:
    """A Hugging Face hub cache holding tiny stand-ins for SD1.5 and its ControlNet 1.1 repos."""

    cache = tmp_path_factory.mktemp("hf-cache")
    pipe = tiny.tiny_pipeline(seed=0)
    base = _snapshot(cache, SD15.base)
    pipe.save_pretrained(base)
    folders, fingerprints = {"base": base}, {}
    for seed, condition in enumerate(CONDITIONS, start=1):
        net = tiny.tiny_controlnet(pipe.unet, seed=seed)
        if TABLE[condition].global_control:  # as the real repo's config (shuffle)
            net.register_to_config(global_pool_conditions=True)
        folders[condition] = _snapshot(cache, SD15.controlnets[condition])
        net.save_pretrained(folders[condition])
        fingerprints[condition] = _fingerprint(net)
    from diffusers import AutoencoderTiny  # TAESD's stand-in, at the tiny VAE's scale (2x)

    AutoencoderTiny(
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
        latent_channels=4,
    ).save_pretrained(_snapshot(cache, SD15.preview_vae))
    for k, few in enumerate(SD15.few_step.values()):  # each few-step LoRA as its repo holds it: one file
        _tiny_lora(_snapshot(cache, few.lora), few.weight_name, seed=10 + k)
    return dict(cache=cache, folders=folders, fingerprints=fingerprints)


def _tiny_lora(folder: Path, weight_name: str, seed: int) -> None:
    """A LoRA for the tiny U-Net, with weights that change its output, saved by diffusers (its layout)."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = tiny.tiny_unet(seed=0)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_v", "conv1"], init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=get_peft_model_state_dict(unet), weight_name=weight_name, safe_serialization=True
    )


def _python(code: str, env: dict[str, str], *args: str, timeout: float = 120) -> dict:
    """Run `code` in a fresh interpreter with exactly these HF_* variables; it prints one JSON line last."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "CONTROLNET_DEMO_"))}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**base_env, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- 1. the sd15 preset, served from the hub cache --------------------------------------------------------


@pytest.mark.slow
def test_sd15_is_resolved_loaded_and_generates_from_the_hub_cache_offline(hub_cache):
    out = _python(
        """
        import json, numpy as np, torch
        from diffusers import ControlNetModel, StableDiffusionPipeline
        torch.set_num_threads(1)
        from controlnet_demo.engine import ControlUnit, Engine, Request
        from controlnet_demo.models.loading import ModelStore, resolve_preset
        from controlnet_demo.models.devices import pick_device
        from controlnet_demo.settings import Settings

        calls = []  # every from_pretrained call the store makes: (class, id, local_files_only)
        def spy(cls):
            original = cls.from_pretrained.__func__
            def from_pretrained(klass, source, *args, **kwargs):
                calls.append((klass.__name__, source, kwargs.get("local_files_only")))
                return original(klass, source, *args, **kwargs)
            cls.from_pretrained = classmethod(from_pretrained)
        spy(StableDiffusionPipeline); spy(ControlNetModel)

        resolved = resolve_preset(Settings(preset="auto"))
        store = ModelStore(resolved, *pick_device("cpu"))
        nets = {c: store.controlnet(c) for c in resolved.preset.controlnets}
        rng = np.random.default_rng(0)
        units = [ControlUnit(c, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for c in ("canny", "depth")]
        result = Engine(store.base, store.controlnets, store.device, store.dtype).generate(
            Request("a house", units, steps=2, width=64, height=48))
        print(json.dumps(dict(
            preset=resolved.preset.name, online=resolved.online, reason=str(resolved.reason),
            base=resolved.preset.base, controlnets=resolved.preset.controlnets, calls=calls,
            base_name=store.base.name_or_path,
            fingerprints={c: float(sum(p.double().sum() for p in n.controlnet_cond_embedding.parameters()))
                          for c, n in nets.items()},
            shape=list(result.images.shape), finite=bool(np.isfinite(result.images).all()),
        )))
        """,
        {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache["cache"])},
    )
    assert (out["preset"], out["online"]) == ("sd15", False)
    assert out["reason"] == "SD1.5 from local files / cache"
    assert out["base"] == SD15.base and out["controlnets"] == SD15.controlnets  # hub ids, not cache paths
    assert out["calls"] == [
        ["StableDiffusionPipeline", SD15.base, True],
        *[["ControlNetModel", SD15.controlnets[c], True] for c in CONDITIONS],
    ]
    assert out["base_name"] == SD15.base
    # each condition got its own repo's weights, exactly as saved
    assert out["fingerprints"] == pytest.approx(hub_cache["fingerprints"], rel=1e-6)
    assert out["shape"] == [1, 48, 64, 3] and out["finite"]


@pytest.mark.slow
@pytest.mark.parametrize("fused", [False, True], ids=["adapters (SD1.5's size)", "fused copies (small U-Nets)"])
def test_sd15_few_step_loras_load_from_the_hub_cache_and_switch_per_request_leaving_the_full_path_bit_identical(
    hub_cache, fused
):
    out = _python(
        """
        import json, sys, numpy as np, torch
        torch.set_num_threads(1)
        from controlnet_demo.engine import ControlUnit, Engine, Request
        from controlnet_demo.models import loading
        from controlnet_demo.models.loading import ModelStore, resolve_preset
        from controlnet_demo.models.devices import pick_device
        from controlnet_demo.settings import Settings

        if sys.argv[1] == "adapters":
            loading.FUSE_BELOW_BYTES = 0  # as SD1.5's U-Net: the LoRAs as switchable adapters in it
        resolved = resolve_preset(Settings(preset="auto"))
        few = resolved.preset.few_step
        def engine():
            store = ModelStore(resolved, *pick_device("cpu"))
            return store, Engine(store.base, store.controlnets, store.device, store.dtype, loras=store.loras)
        rng = np.random.default_rng(0)
        unit = ControlUnit("canny", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        def request(lora=None):
            if lora is None:
                return Request("a house", [unit], steps=3, width=64, height=48, seed=5)
            f = few[lora]
            return Request("a house", [unit], steps=f.steps, guidance_scale=f.guidance, width=64, height=48,
                           seed=5, scheduler=f.scheduler, lora=lora)
        _, never = engine()  # a store that never loads a LoRA
        reference = never.generate(request()).images
        store, e = engine()
        first = e.generate(request()).images
        lcm = e.generate(request("lcm")).images
        hyper = e.generate(request("hyper")).images
        lcm_again = e.generate(request("lcm")).images
        after = e.generate(request()).images
        adapters = sorted(getattr(store.base.unet, "peft_config", {}))
        text_encoder_untouched = not getattr(store.base.text_encoder, "peft_config", None)
        print(json.dumps(dict(
            names=sorted(few), schedulers={k: f.scheduler for k, f in few.items()},
            first_equal=bool((first == reference).all()), after_equal=bool((after == reference).all()),
            lcm_differs=float(np.abs(lcm - reference).max()), hyper_differs=float(np.abs(hyper - lcm).max()),
            lcm_repeat=bool((lcm == lcm_again).all()), adapters=adapters, text_encoder_untouched=text_encoder_untouched,
            kinds=sorted({type(store.loras[k]).__name__ for k in few}),
        )))
        """,
        {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache["cache"])},
        "fused" if fused else "adapters",
    )
    assert out["names"] == ["hyper", "lcm"]
    assert out["schedulers"] == {"lcm": "LCM", "hyper": "DDIM trailing"}
    assert out["first_equal"] and out["after_equal"]  # the paper's path, bit for bit, before and after the LoRAs
    assert out["lcm_differs"] > 1e-3 and out["hyper_differs"] > 1e-3  # each LoRA (and its sampler) takes effect
    assert out["lcm_repeat"]  # switching away and back gives the same image again
    assert out["text_encoder_untouched"]
    if fused:  # the base U-Net never gets an adapter; each LoRA is a U-Net of its own
        assert out["adapters"] == [] and out["kinds"] == ["UNet2DConditionModel"]
    else:
        assert out["adapters"] == ["hyper", "lcm"] and out["kinds"] == ["str"]


@pytest.mark.slow
def test_a_few_step_lora_that_is_not_cached_is_not_offered_and_the_rest_still_serves(hub_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(hub_cache["cache"], cache, symlinks=True)
    shutil.rmtree(cache / ("models--" + SD15.few_step["hyper"].lora.replace("/", "--")))
    out = _python(
        """
        import json
        from controlnet_demo.models.loading import resolve_preset
        from controlnet_demo.settings import Settings
        r = resolve_preset(Settings(preset="auto"))
        print(json.dumps(dict(preset=r.preset.name, speeds=list(r.preset.speeds()))))
        """,
        {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)},
    )
    assert out == {"preset": "sd15", "speeds": ["full", "lcm"]}


# --- 2. overrides -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_env_overrides_make_the_preset_use_local_folders_which_count_as_available(hub_cache):
    folders = hub_cache["folders"]
    env = {"CONTROLNET_DEMO_BASE_MODEL": str(folders["base"])}
    env |= {f"CONTROLNET_DEMO_{c.upper()}_MODEL": str(folders[c]) for c in CONDITIONS}
    resolved = resolve_preset(Settings.from_env(env))
    assert (resolved.preset.name, resolved.online) == ("sd15", False)
    assert resolved.preset.base == str(folders["base"])
    assert resolved.preset.controlnets == {c: str(folders[c]) for c in CONDITIONS}

    store = ModelStore(resolved, *pick_device("cpu"))
    assert _fingerprint(store.controlnet("pose")) == pytest.approx(hub_cache["fingerprints"]["pose"], rel=1e-6)


def test_partial_overrides_keep_the_presets_other_models():
    settings = Settings.from_env({"CONTROLNET_DEMO_CANNY_MODEL": "/models/my-canny", "CONTROLNET_DEMO_DEPTH_MODEL": ""})
    preset = apply_overrides(SD15, settings)
    assert preset.base == SD15.base
    assert preset.controlnets == {**SD15.controlnets, "canny": "/models/my-canny"}


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(lambda: Settings.from_env({"CONTROLNET_DEMO_OPENPOSE_MODEL": "/models/op"}), id="env-typo"),
        pytest.param(lambda: Settings(controlnets={"openpose": "/models/op"}), id="settings"),
    ],
)
def test_override_of_an_unknown_condition_is_an_error_naming_the_known_ones(settings):
    with pytest.raises(
        UserInputError,
        match=r"Unknown condition .openpose. \(ControlNet overrides: CONTROLNET_DEMO_<CONDITION>_MODEL\); choose one of: canny, pose, depth, scribble",
    ):
        resolve_preset(settings())


def test_override_with_a_folder_that_does_not_exist_falls_back_or_fails_clearly():
    missing = "/nonexistent/sd15-folder"  # no folder, and not a valid hub id either
    resolved = resolve_preset(Settings(base_model=missing))
    assert resolved.preset.name == offline_fallback().name and missing in str(resolved.reason)
    with pytest.raises(ModelUnavailableError, match="sd15 preset can't be loaded.*/nonexistent/sd15-folder"):
        resolve_preset(Settings(preset="sd15", base_model=missing))


# --- 3. falling back ----------------------------------------------------------------------------------------

_RESOLVE_TIMED = """
    import json, os, sys, time
    import huggingface_hub  # imported up front: the timing is of the decision, not of this import
    from controlnet_demo.errors import ModelUnavailableError
    from controlnet_demo.models.loading import resolve_preset
    from controlnet_demo.settings import Settings

    started = time.monotonic()
    resolved = resolve_preset(Settings(preset="auto"))
    seconds = time.monotonic() - started
    explicit = None
    if sys.argv[1:] == ["explicit"]:
        try:
            resolve_preset(Settings(preset="sd15"))
        except ModelUnavailableError as exc:
            explicit = str(exc)
    print(json.dumps(dict(preset=resolved.preset.name, online=resolved.online, reason=str(resolved.reason),
                          seconds=seconds, explicit=explicit)), flush=True)
    # don't wait at exit for hub requests still running in resolve_preset's abandoned worker threads
    os._exit(0)
"""


SD15_IDS = (SD15.base, *SD15.controlnets.values())


@pytest.mark.slow
def test_sd15_previews_decode_with_the_tiny_vae_from_the_cache_and_stop_without_it(hub_cache):
    out = _python(
        """
        import dataclasses, json, torch
        torch.set_num_threads(1)
        from controlnet_demo.engine import Engine, Request
        from controlnet_demo.models.loading import ModelStore, Resolved, resolve_preset
        from controlnet_demo.models.devices import pick_device
        from controlnet_demo.settings import Settings

        resolved = resolve_preset(Settings(preset="auto"))
        missing = dataclasses.replace(resolved.preset, preview_vae="nobody/no-such-taesd")
        out = {}
        for name, preset in (("taesd", resolved.preset), ("missing", missing)):
            store = ModelStore(Resolved(preset, resolved.online, resolved.reason), *pick_device("cpu"))
            previews = []
            engine = Engine(store.base, store.controlnets, store.device, store.dtype, store.preview_decoder())
            result = engine.generate(Request("a house", [], steps=4, width=64, height=48), preview_every=2,
                                     on_preview=lambda i, n, images: previews.append([i, list(images.shape)]))
            out[name] = dict(decoder=type(store.preview_decoder()).__name__, previews=previews,
                             shape=list(result.images.shape))
        print(json.dumps(out))
        """,
        {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache["cache"])},
    )
    assert out["taesd"] == dict(decoder="AutoencoderTiny", previews=[[2, [1, 48, 64, 3]]], shape=[1, 48, 64, 3])
    # not cached and offline: no previews (not slow ones through the full VAE), and the image as always
    assert out["missing"] == dict(decoder="NoneType", previews=[], shape=[1, 48, 64, 3])


@pytest.mark.slow
def test_empty_cache_offline_falls_back_at_once_naming_the_missing_models(tmp_path):
    with socket.socket() as hub:  # where the hub would be asked: nothing may connect (no network is tried)
        hub.bind(("127.0.0.1", 0))
        hub.listen(64)
        hub.setblocking(False)
        env = {
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": str(tmp_path),
            "HF_ENDPOINT": f"http://127.0.0.1:{hub.getsockname()[1]}",
        }
        out = _python(_RESOLVE_TIMED, env, "explicit")
        with pytest.raises(BlockingIOError):
            hub.accept()
    assert (out["preset"], out["online"]) == (offline_fallback().name, False)
    assert "HF_HUB_OFFLINE is set" in out["reason"] and all(i in out["reason"] for i in SD15_IDS)
    # preset="sd15" asked for explicitly: no fallback but an error naming what is missing
    assert out["explicit"].startswith("The sd15 preset can't be loaded")
    assert all(i in out["explicit"] for i in SD15_IDS)


@pytest.mark.slow
def test_unreachable_hub_falls_back_within_the_hub_timeout(tmp_path):
    # a hub that accepts connections and never answers: requests run into their timeout (a refused connection
    # or a failed DNS lookup would fail fast and not exercise it), and no test ever reaches the real hub
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        out = _python(
            _RESOLVE_TIMED,
            {
                "HF_HUB_OFFLINE": "0",
                "HF_HUB_CACHE": str(tmp_path),
                "HF_ENDPOINT": f"http://127.0.0.1:{blackhole.getsockname()[1]}",
            },
        )
    assert (out["preset"], out["online"]) == (offline_fallback().name, False)
    assert "the hub is not reachable" in out["reason"] and all(i in out["reason"] for i in SD15_IDS)
    timeout = Settings().hub_timeout_s  # 2 s; resolve_preset allows 0.5 s of grace on top
    # it waited for the hub, and not for the hub client's own timeouts (10 s and more per file)
    assert 0.9 * timeout <= out["seconds"] < 3 * timeout


# --- 4. device ----------------------------------------------------------------------------------------------


def test_pick_device_is_cpu_float32_without_cuda_and_cuda_float16_with_it(monkeypatch):
    assert pick_device("cpu") == (torch.device("cpu"), torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == (torch.device("cpu"), torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == (torch.device("cuda"), torch.float16)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_pick_device_on_this_cpu_only_machine_is_cpu_float32():
    assert pick_device() == (torch.device("cpu"), torch.float32)


# --- 5. damaged files ---------------------------------------------------------------------------------------


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.slow
@pytest.mark.parametrize("damaged", ["unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"])
def test_truncated_base_weights_raise_model_unavailable_naming_the_model_and_the_fix(hub_cache, tmp_path, damaged):
    folder = tmp_path / "sd15"
    shutil.copytree(hub_cache["folders"]["base"], folder)
    _truncate(folder / damaged)
    store = ModelStore(Resolved(dataclasses.replace(SD15, base=str(folder)), False, "test"), *pick_device("cpu"))
    with pytest.raises(ModelUnavailableError) as caught:
        _ = store.base
    message = str(caught.value)
    assert message.startswith(f"The base model {folder} could not be loaded")
    assert "delete that model's folder" in message and "download it again" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained raw traceback


@pytest.mark.slow
def test_truncated_controlnet_weights_raise_model_unavailable_naming_the_condition(hub_cache, tmp_path):
    folder = tmp_path / "canny"
    shutil.copytree(hub_cache["folders"]["canny"], folder)
    _truncate(folder / "diffusion_pytorch_model.safetensors")
    preset = dataclasses.replace(SD15, base=str(hub_cache["folders"]["base"]), overrides={"canny": str(folder)})
    store = ModelStore(Resolved(preset, False, "test"), *pick_device("cpu"))
    with pytest.raises(ModelUnavailableError, match=f"The canny ControlNet {folder} could not be loaded.*delete"):
        store.controlnet("canny")


def test_the_offline_fallback_is_the_embedded_model_when_installed_else_the_random_tiny_one(tmp_path, monkeypatch):
    from controlnet_demo.models import presets

    monkeypatch.setattr(presets, "OFFLINE", dataclasses.replace(presets.OFFLINE, base=str(tmp_path), folder=tmp_path))
    assert presets.offline_fallback() is presets.TINY
    (tmp_path / "model_index.json").write_text("{}")
    assert presets.offline_fallback() is presets.TINY  # a base without its ControlNets is not enough
    for folder in presets.OFFLINE.controlnets.values():  # every condition the table gives the embedded model
        Path(folder).mkdir()
        (Path(folder) / "config.json").write_text("{}")
    assert presets.offline_fallback() is presets.OFFLINE
    assert resolve_preset(Settings(preset="tiny")).preset == presets.TINY  # overrides applied: a copy


def test_model_sources_are_shown_without_machine_paths(tmp_path):
    from controlnet_demo.paths import OFFLINE_MODEL_DIR, shown

    assert shown(str(OFFLINE_MODEL_DIR)) == "assets/offline-model"  # a folder of this repo: relative to it
    assert shown("lllyasviel/control_v11p_sd15_canny") == "lllyasviel/control_v11p_sd15_canny"  # a hub id
    assert shown(str(tmp_path)) == str(tmp_path)  # the operator's own folder, as given


# --- 4. what a Space downloads at build time ------------------------------------------------------------------


def test_the_readme_preloads_every_file_the_sd15_preset_and_the_detectors_read(hub_cache):
    """The Space's front matter (`preload_from_hub`) downloads at build time what the sd15 preset loads: every file
    the stand-ins in the hub repos' layout hold (saved by diffusers as the real repos are), and every detector
    weight; `models` names the same repos."""
    import yaml

    from controlnet_demo.conditions.detectors import DETECTORS

    meta = yaml.safe_load((REPO_ROOT / "README.md").read_text().split("---")[1])
    preload = {
        repo: set(files.split(",")) for repo, files in (entry.split(" ", 1) for entry in meta["preload_from_hub"])
    }
    repos = [SD15.base, *SD15.controlnets.values(), SD15.preview_vae, *(few.lora for few in SD15.few_step.values())]
    for repo in repos:
        snapshot = next((hub_cache["cache"] / ("models--" + repo.replace("/", "--")) / "snapshots").iterdir())
        saved = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
        # transformers saves the stand-in's tokenizer fast (tokenizer.json); the real repo holds the slow files,
        # vocab.json and merges.txt, from which it is built
        saved.discard("tokenizer/tokenizer.json")
        assert saved <= preload[repo], (repo, saved - preload[repo])
    weights = {name for _, _, files in DETECTORS.values() for name in files}
    assert weights <= preload[Settings().annotators]
    assert set(meta["models"]) == set(preload) == {*repos, Settings().annotators}
