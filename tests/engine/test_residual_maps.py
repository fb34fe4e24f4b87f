"""Where the residuals go (Request.residual_maps): per step and connection, the mean |residual| over channels that
the first image's conditional branch got, on the latents' grid; recorded only when asked for."""

from __future__ import annotations

import numpy as np
import pytest

from controlnet_demo import conditions
from controlnet_demo.engine import ControlUnit, Request, zero_convolutions
from controlnet_demo.images import resize

SIZE = 64


def _request(astronaut, **changes) -> Request:
    edges = resize(conditions.detect("canny", astronaut, resolution=SIZE), (SIZE, SIZE))
    values = dict(steps=4, seed=2, width=SIZE, height=SIZE, units=(ControlUnit("canny", edges),))
    return Request("a red circle", **{**values, **changes})


def test_the_default_path_records_nothing_and_asking_changes_no_pixel(engine, astronaut):
    plain = engine.generate(_request(astronaut))
    mapped = engine.generate(_request(astronaut, residual_maps=True))
    assert plain.residual_maps == {}
    np.testing.assert_array_equal(plain.images, mapped.images)
    assert plain.residual_norms == mapped.residual_norms


def test_the_maps_are_each_connections_residual_spread_over_the_latents(engine, astronaut):
    """Without CFG and with one image the maps hold everything the norms average: each map's mean over the grid,
    averaged over the steps, is that connection's mean |residual|."""
    result = engine.generate(_request(astronaut, residual_maps=True, guidance_scale=1.0))
    [(label, maps)] = result.residual_maps.items()
    latents = SIZE // engine.base.vae_scale_factor
    connections = len(zero_convolutions(engine.controlnets["canny"]))  # 13 for SD1.5; the tiny model has fewer
    assert label == "1. canny" and maps.shape == (4, connections, latents, latents) and maps.dtype == np.float32
    assert (maps >= 0).all() and maps.max() > 0
    np.testing.assert_allclose(maps.mean(axis=(0, 2, 3)), result.residual_norms[label], rtol=1e-5)


def test_outside_its_window_a_unit_added_nothing(engine, astronaut):
    unit = ControlUnit("canny", np.zeros((SIZE, SIZE, 3), np.uint8) + 255, end=0.5)
    maps = engine.generate(_request(astronaut, units=(unit,), residual_maps=True)).residual_maps["1. canny"]
    assert (maps[:2].max(axis=(1, 2, 3)) > 0).all()  # steps 1-2 of 4: inside the window
    assert not maps[2:].any()  # steps 3-4: its ControlNet did not run


@pytest.mark.parametrize("step", [1, 4])
def test_the_grid_draws_a_row_per_condition_and_a_column_per_connection(engine, astronaut, step):
    from controlnet_demo.ui.residual_maps import CELL, render

    result = engine.generate(_request(astronaut, residual_maps=True))
    grid = render(result.residual_maps, step)
    connections = len(zero_convolutions(engine.controlnets["canny"]))
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.shape[1] > connections * CELL
    assert render({}, 1) is None
