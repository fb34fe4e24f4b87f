"""The optional fast mode (torch.compile, `CONTROLNET_DEMO_COMPILE=1`): same images up to rounding, compiled at
start-up rather than in a user's request, labelled in the UI and recorded in every PNG. Compilation is slow on a
CPU (about a minute per image size on 2 cores), so these few tests are all there is of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from controlnet_demo import conditions
from controlnet_demo.engine import ControlUnit, Request
from controlnet_demo.images import resize
from tests.builders import engine_on

SIZE = 64


def _request(condition: str, photo: np.ndarray) -> Request:
    edges = resize(conditions.detect("canny", photo, resolution=SIZE), (SIZE, SIZE))
    return Request(
        "a red circle",
        [ControlUnit(condition, edges)],
        "blurry",
        steps=2,
        guidance_scale=7.5,
        seed=3,
        width=SIZE,
        height=SIZE,
    )


def _graphs() -> int:
    return counters["stats"]["unique_graphs"]


@pytest.mark.slow
def test_compiled_fast_mode_matches_the_exact_engine_and_compiles_once_for_every_controlnet(
    store, engine, astronaut, coffee
):
    """The optional fast mode (torch.compile): same images up to rounding; one ControlNet graph serves the other
    ControlNets of the same architecture (their weights are graph inputs), so a second condition compiles nothing."""
    from torch._dynamo.utils import counters

    fast = engine_on(store, compile_mode="auto")
    canny, depth = _request("canny", astronaut), _request("depth", coffee)
    torch._dynamo.reset()
    counters.clear()
    got = fast.generate(canny).images
    compiled_graphs = _graphs()
    assert compiled_graphs >= 2  # the U-Net's and the ControlNet's
    assert np.abs(got - engine.generate(canny).images).max() <= 1e-3
    got = fast.generate(depth).images
    assert _graphs() == compiled_graphs  # no recompilation for another ControlNet
    assert np.abs(got - engine.generate(depth).images).max() <= 1e-3


@pytest.mark.slow
def test_the_app_warms_the_fast_mode_up_labels_it_and_records_it_in_the_png(astronaut):
    from controlnet_demo.service import ControlNetService, GenerateSpec, UnitSpec, final_output, read_parameters
    from controlnet_demo.settings import Settings
    from controlnet_demo.ui import build
    from controlnet_demo.ui.app import _fast_mode_note

    # the cudagraphs mode: the same warm-up and labels without Inductor's minutes of C++ compiling on a CPU (the
    # Inductor path itself is the test above)
    demo = ControlNetService(Settings(preset="tiny", compile="cudagraphs"))
    assert demo.warm_up() > 0
    before = _graphs()
    out = final_output(demo.generate(GenerateSpec("a red circle", [UnitSpec("canny", astronaut, end=0.5)], seed=1)))
    assert _graphs() == before  # the first request at the default size compiled nothing: the warm-up did it
    assert out.params["engine"] == read_parameters(out.files[0])["engine"] == "compiled (fast mode, cudagraphs)"
    with build(demo) as blocks:
        header = next(b.value for b in blocks.blocks.values() if "Fast mode" in str(getattr(b, "value", "")))
    assert "torch.compile, mode `cudagraphs`" in header and "exact engine's" in header
    assert "differ" in _fast_mode_note("default")  # Inductor's kernels round differently


def test_the_fast_mode_setting_takes_off_on_or_a_compile_mode_and_names_the_choices_when_wrong():
    import pytest

    from controlnet_demo.settings import COMPILE_MODES, Settings

    def mode(value):
        return Settings.from_env({"CONTROLNET_DEMO_COMPILE": value}).compile

    assert Settings.from_env({}).compile is None
    assert [mode(v) for v in ("0", "off", "", "1", "true", "cudagraphs", " Reduce-Overhead ")] == [
        None,
        None,
        None,
        "auto",
        "auto",
        "cudagraphs",
        "reduce-overhead",
    ]
    with pytest.raises(ValueError, match="CONTROLNET_DEMO_COMPILE='fast'.*" + ", ".join(COMPILE_MODES)):
        mode("fast")
    # the "aoti" mode's sizes: one graph per module and size
    assert Settings.from_env({}).aot_sizes == ()
    assert Settings.from_env({"CONTROLNET_DEMO_AOT_SIZES": "512, 768"}).aot_sizes == (512, 768)
    with pytest.raises(ValueError, match="CONTROLNET_DEMO_AOT_SIZES='big'.*512,768"):
        Settings.from_env({"CONTROLNET_DEMO_AOT_SIZES": "big"})


@pytest.mark.slow
def test_the_cudagraphs_mode_runs_pytorchs_own_kernels_so_its_images_are_the_exact_engines(store, engine, astronaut):
    """`CONTROLNET_DEMO_COMPILE=cudagraphs`: no Inductor code, so nothing rounds differently (on a GPU the kernels
    are replayed from CUDA graphs; on a CPU there are none, and the same kernels run from the traced graph)."""
    request = _request("canny", astronaut)
    got = engine_on(store, compile_mode="cudagraphs").generate(request).images
    assert np.array_equal(got, engine.generate(request).images)


@pytest.mark.slow
def test_models_loaded_inside_a_request_are_ordinary_tensors_so_compiled_graphs_fit_every_model():
    """A ControlNet loaded by a request (inside the engine's inference_mode) and one loaded outside must not differ
    in what torch.compile guards on (inference tensors vs ordinary ones), or the fast mode compiles once per model."""
    from controlnet_demo.models.loading import ModelStore, resolve_preset
    from controlnet_demo.settings import Settings

    store = ModelStore(resolve_preset(Settings(preset="tiny")), torch.device("cpu"), torch.float32)
    with torch.inference_mode():
        inside = store.controlnet("pose")
    outside = store._load_controlnet("pose", store.base)
    assert not any(p.is_inference() for p in inside.parameters())
    assert [p.is_inference() for p in inside.parameters()] == [p.is_inference() for p in outside.parameters()]


def test_channels_last_stores_the_unet_and_the_controlnets_convolutions_in_it():
    """The fast mode on a GPU asks the store for channels_last (the benchmark's --channels-last)."""
    from controlnet_demo.models.loading import ModelStore, resolve_preset
    from controlnet_demo.settings import Settings

    store = ModelStore(resolve_preset(Settings(preset="tiny")), torch.device("cpu"), torch.float32, channels_last=True)
    for model in (store.base.unet, store.controlnet("canny")):
        weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
        assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
        assert not all(w.is_contiguous() for w in weights)
