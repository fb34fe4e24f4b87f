"""The fast mode ahead of time ("aoti", ZeroGPU's way): the U-Net and a ControlNet captured with spaces.aoti_capture,
exported and compiled with spaces.aoti_compile, for real, on a CPU (AOTInductor builds C++ there: about a minute
per module on 2 cores), at one size (CONTROLNET_DEMO_AOT_SIZES): a graph per module and size. A request of the
compiled size runs the graphs; one of any other size, or of a module not compiled, runs the exact path."""

from __future__ import annotations

import numpy as np
import pytest

from controlnet_demo.service import ControlNetService, UnitSpec
from controlnet_demo.settings import Settings
from tests.builders import small_spec

pytestmark = pytest.mark.slow
SIDE = 128  # the tiny model's default size (compiling a second one would add a minute: one graph per module and size)


@pytest.fixture(scope="module")
def services():
    aot = ControlNetService(Settings(preset="tiny", preview_every=0, compile="aoti", aot_sizes=(SIDE,)))
    aot.install_graphs(aot.compile_ahead(conditions=["canny"]))
    return aot, ControlNetService(Settings(preset="tiny", preview_every=0))


def _counting(service) -> list[str]:
    """Every compiled graph the service's engine calls, by module name, from now on."""
    calls: list[str] = []
    graphs = service.engine.aot.graphs
    for key, graph in list(graphs.items()):

        def counted(*args, _graph=graph, _name=key[0], **kwargs):
            calls.append(_name)
            return _graph(*args, **kwargs)

        graphs[key] = counted
    return calls


def test_the_compiled_size_runs_its_graphs_and_matches_the_exact_engine(services, astronaut):
    aot, exact = services
    assert sorted(name for name, _ in aot.engine.aot.graphs) == ["canny", "unet"]  # a graph per module and size
    calls = _counting(aot)
    spec = small_spec(astronaut, steps=4, resolution=SIDE)
    ours = aot.run(aot.prepare(spec))
    theirs = exact.run(exact.prepare(spec))
    assert calls.count("unet") == 4 and calls.count("canny") == 4  # every step, both modules
    np.testing.assert_allclose(ours.result.images, theirs.result.images, atol=1e-4)
    assert ours.params["engine"] == "compiled (fast mode, aoti)"


def test_another_size_or_a_condition_not_compiled_takes_the_exact_path(services, astronaut):
    aot, exact = services
    calls = _counting(aot)
    other_sizes = [small_spec(astronaut, steps=2, resolution=side) for side in (64, 192)]
    for spec in (*other_sizes, small_spec(astronaut, steps=2, resolution=SIDE, num_images=2)):
        ours, theirs = aot.run(aot.prepare(spec)), exact.run(exact.prepare(spec))
        np.testing.assert_array_equal(ours.result.images, theirs.result.images)
    assert calls == []
    # a depth unit at the compiled size: the U-Net's graph serves it, the depth ControlNet runs eagerly
    depth_map = UnitSpec("depth", astronaut, preprocessor="none")
    depth = small_spec(astronaut, steps=2, resolution=SIDE, units=[depth_map])
    ours, theirs = aot.run(aot.prepare(depth)), exact.run(exact.prepare(depth))
    assert calls == ["unet", "unet"]
    np.testing.assert_allclose(ours.result.images, theirs.result.images, atol=1e-4)


def test_a_size_the_model_does_not_serve_is_refused_in_words():
    service = ControlNetService(Settings(preset="tiny", preview_every=0, compile="aoti", aot_sizes=(100,)))
    with pytest.raises(ValueError, match="100 is not a resolution this model serves"):
        service.compile_ahead()
