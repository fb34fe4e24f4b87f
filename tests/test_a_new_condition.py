"""A new condition is one entry of the table: `tests/new_condition.py` defines one (ships nowhere, no other file names
it), and the app, launched with it, serves it everywhere a shipped condition is served: its tab and API endpoint,
Compose, Compare, /detect, the MCP tools, the control check, the result PNG's parameters, and the CLI, whose
`--from-png` reproduces the picture."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from controlnet_demo.paths import EXAMPLES_DIR, REPO_ROOT
from controlnet_demo.service import read_parameters
from controlnet_demo.settings import Settings
from tests import new_condition
from tests.apiclient import QUICK, pixels
from tests.builders import serve
from tests.cli.test_generate import cli, ok, printed

pytestmark = pytest.mark.slow  # it launches an app of its own, and the CLI

NAME = new_condition.NAME
PHOTO = EXAMPLES_DIR / "astronaut.jpg"


@pytest.fixture(scope="module")
def app():
    """The tiny-preset app with the new condition in the table (and, after, the table and the registry of the UI's
    texts as they were: the catalogs' tests must not see a text that ships nowhere)."""
    from controlnet_demo.ui import i18n

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(i18n, "_texts", dict(i18n._texts))
        patch.setattr(i18n, "_marked", set(i18n._marked))
        new_condition.install()
        url, service, blocks = serve(Settings(preset="tiny", mcp=True))
        try:
            yield url, service
        finally:
            blocks.close()
            from controlnet_demo.conditions import CONDITIONS

            del CONDITIONS[NAME]


def test_its_tab_and_endpoint_generate_with_its_preprocessor_its_setting_and_its_check(app):
    url, _ = app
    client = Client(url, verbose=False)
    parameters = [
        p["parameter_name"] for p in client.view_api(return_format="dict")["named_endpoints"][f"/{NAME}"]["parameters"]
    ]
    assert parameters[:3] == ["image", "prompt", "negative_prompt"] and "gamma" in parameters
    images, maps, params, *_ = client.predict(
        api_name=f"/{NAME}", image=handle_file(str(PHOTO)), preprocessor="invert", gamma=2.0, **QUICK
    )
    [unit] = params["units"]
    assert (unit["condition"], unit["preprocessor"], unit["params"]) == (NAME, "invert", {"gamma": 2.0})
    [check] = params["control_check"]
    assert check["metric"] == "inverted grey correlation" and check["threshold"] == 0.2
    assert read_parameters(images[0]["image"])["units"][0]["condition"] == NAME
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    expected = new_condition.inverted(photo, 128, None, gamma=2.0)  # the tiny preset's preprocessor resolution
    assert pixels(maps[0]["image"]).shape[:2] == (64, 64) and expected.shape[:2] == (128, 128)
    assert abs(pixels(maps[0]["image"]).mean() - expected.mean()) < 8  # the map as its preprocessor made it


def test_compose_compare_and_detect_take_it(app):
    url, _ = app
    client = Client(url, verbose=False)
    photo = handle_file(str(PHOTO))
    composed = client.predict(
        api_name="/compose", condition_1=NAME, image_1=photo, preprocessor_1="invert", enabled_2=False, **QUICK
    )
    assert [u["condition"] for u in composed[2]["units"]] == [NAME]
    grid, used = client.predict(
        api_name="/compare", condition_1=NAME, image_1=photo, preprocessor_1="invert", enabled_2=False, **QUICK
    )
    assert len(grid) == len(used) >= 2 and all(u["units"][0]["condition"] == NAME for u in used)
    detected = client.predict(api_name="/detect", image=photo, condition=NAME)
    assert pixels(detected).shape[:2] == (128, 128)


def test_its_mcp_tool_is_listed_and_described(app):
    url, _ = app
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def tools():
        async with streamablehttp_client(f"{url}/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return {t.name: t for t in (await session.list_tools()).tools}

    listed = asyncio.run(tools())
    assert NAME in listed and "Negative" in listed[NAME].description
    assert "gamma" in listed[NAME].inputSchema["properties"]
    assert NAME in listed["detect"].inputSchema["properties"]["condition"]["description"]


def test_the_cli_generates_with_it_and_reproduces_the_png(tmp_path):
    def run(*args):  # the CLI with the new condition installed
        return ok(cli(*args, cwd=REPO_ROOT, module="tests.new_condition"))

    fast = ["--preset", "tiny", "--steps", "2", "--device", "cpu", "--resolution", "64", "--seed", "3"]
    unit = ["--condition", NAME, "--image", PHOTO, "--param", "gamma=0.5"]
    made = run("generate", "--prompt", "a face", *fast, "--out", tmp_path / "first", *unit)
    [png] = printed(made, "image")
    stored = read_parameters(png)
    assert (stored["units"][0]["condition"], stored["units"][0]["params"]) == (NAME, {"gamma": 0.5})
    again = run(
        "generate", "--from-png", png, *fast[:2], "--device", "cpu", "--out", tmp_path / "again", "--image", PHOTO
    )
    [copy] = printed(again, "image")
    assert np.array_equal(pixels(copy), pixels(png))
    assert read_parameters(copy)["units"] == stored["units"]


def test_a_model_family_without_its_controlnet_refuses_it_in_words(monkeypatch):
    from controlnet_demo.conditions import CONDITIONS
    from controlnet_demo.errors import UserInputError
    from controlnet_demo.models.presets import TINY
    from controlnet_demo.service import ControlNetService, GenerateSpec, UnitSpec

    monkeypatch.setitem(CONDITIONS, NAME, new_condition.ENTRY)
    service = ControlNetService(Settings(preset="offline"))  # the embedded model: no checkpoint of it in its family
    assert NAME not in service.preset.controlnets and NAME in TINY.controlnets
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    with pytest.raises(UserInputError, match="The Negative condition is not served by this model .*; it serves: canny"):
        service.prepare(GenerateSpec("a face", [UnitSpec(NAME, photo)]))
