"""Compare (with and without the ControlNet, and a strength sweep): what it runs, and /compare on the served app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from controlnet_demo.service import GenerateSpec, UnitSpec
from controlnet_demo.service.compare import STRENGTHS, compare_specs
from tests.apiclient import generate, pixels, request


def test_every_variant_shares_one_seed_and_differs_only_in_the_strength():
    spec = GenerateSpec("a cat", [UnitSpec("canny", None, strength=0.8), UnitSpec("depth", None)], num_images=3)
    variants = compare_specs(spec)
    assert [name for name, _ in variants] == [
        "your settings",
        "ControlNet off",
        "strength 0.5",
        "strength 1",
        "strength 1.5",
    ]
    seeds = {one.seed for _, one in variants}
    assert len(seeds) == 1 and seeds != {-1}  # a random seed is drawn once, for all
    assert all(one.num_images == 1 for _, one in variants)
    assert [[u.strength for u in one.units] for _, one in variants[1:]] == [[s, s] for s in STRENGTHS]
    assert variants[0][1].units == spec.units  # the request as it was set
    # when the request's strength is one of the sweep's, it is not run twice
    assert len(compare_specs(GenerateSpec("a cat", [UnitSpec("canny", None)], seed=4))) == len(STRENGTHS)


def test_compare_returns_the_grid_and_what_each_used_and_each_image_is_the_plain_request_at_its_strength(client, files):
    """/compare takes /compose's parameters; its strength-1 image is /compose's at that seed, pixel for pixel, and
    the strength-0 one is the locked model alone (at strength 0 the engine runs no ControlNet)."""
    grid, used = client.predict(api_name="/compare", **request("/compose", files))
    if isinstance(used, str):  # a JSON output may arrive as a file
        used = json.loads(Path(used).read_text())
    assert [g["caption"] for g in grid] == [
        "ControlNet off",
        "strength 0.5",
        "strength 1",
        "strength 1.5",
    ]
    assert [[u["strength"] for u in one["units"]] for one in used] == [[s, s] for s in STRENGTHS]
    assert len({one["seed"] for one in used}) == 1
    plain = generate(client, "/compose", files, seed=used[0]["seed"])
    assert np.array_equal(pixels(grid[2]["image"]), pixels(plain.images[0]))
    assert not np.array_equal(pixels(grid[0]["image"]), pixels(grid[3]["image"]))  # the control changes the image
