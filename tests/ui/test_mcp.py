"""The app as an MCP server (gradio's, `CONTROLNET_DEMO_MCP`): an MCP client (the `mcp` package) against the
launched app lists the tools with descriptions an agent can read, detects a control map, generates, and gets a bad
request back in words."""

from __future__ import annotations

import asyncio
import base64
import io

import numpy as np
import pytest
from PIL import Image

from controlnet_demo.conditions import CONDITIONS
from controlnet_demo.service import UnitSpec
from controlnet_demo.settings import Settings
from tests.builders import serve

pytest.importorskip("mcp", reason="the mcp package (gradio[mcp]) is not installed")

TOOLS = {*CONDITIONS, "compose", "compare", "live", "detect"}


@pytest.fixture(scope="module")
def mcp_app():
    url, demo, blocks = serve(Settings(preset="tiny", mcp=True))
    try:
        yield url, demo
    finally:
        blocks.close()


def _data_uri(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _session(url: str, work):
    """Run `work(session)` in an initialised MCP client session over streamable HTTP."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run():
        async with streamablehttp_client(f"{url}/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(run())


def _images(result) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(c.data))).convert("RGB"))
        for c in result.content
        if c.type == "image"
    ]


def test_the_tools_are_listed_with_what_each_does_and_what_each_parameter_means(mcp_app):
    url, _ = mcp_app

    async def work(session):
        return (await session.list_tools()).tools

    tools = {t.name: t for t in _session(url, work)}
    assert TOOLS <= tools.keys(), sorted(tools)
    assert "without generating anything" in tools["detect"].description
    assert "Canny" in tools["canny"].description and "residuals are added" in tools["compose"].description
    props = tools["canny"].inputSchema["properties"]
    assert "What the picture shows" in props["prompt"]["description"]
    assert "fraction of the denoising steps" in props["start"]["description"]
    assert "Condition 2" in tools["compose"].inputSchema["properties"]["image_2"]["description"]


def test_an_agent_detects_a_map_generates_and_gets_a_bad_request_in_words(mcp_app, astronaut):
    url, demo = mcp_app
    photo = np.asarray(Image.fromarray(astronaut).resize((128, 128)))

    async def work(session):
        detected = await session.call_tool("detect", {"image": _data_uri(photo), "condition": "canny"})
        made = await session.call_tool(
            "canny",
            {"image": _data_uri(photo), "prompt": "an astronaut", "steps": 2, "resolution": 64, "seed": 5},
        )
        quick = await session.call_tool(
            "live", {"image": _data_uri(photo), "prompt": "an astronaut", "condition": "canny", "seed": 5}
        )
        bad = await session.call_tool("detect", {"image": _data_uri(photo), "condition": "bogus"})
        return detected, made, quick, bad

    detected, made, quick, bad = _session(url, work)
    assert not detected.isError
    expected = demo.detect(UnitSpec("canny", photo, None, demo.preset.detect_resolution))
    assert np.array_equal(_images(detected)[0], expected)  # the same map the generation endpoints use
    # a generation endpoint has several outputs, which gradio's MCP server hands over as one text: the images'
    # URLs, the parameters and the control check; the one-image tools (live, detect) answer with the image itself
    text = made.content[0].text
    assert not made.isError and "/gradio_api/file=" in text and "'prompt': 'an astronaut'" in text
    assert "Control check" in text
    assert not quick.isError and len(_images(quick)) == 1
    assert bad.isError and "canny" in str(bad.content) and "Traceback" not in str(bad.content)


def test_the_mcp_server_is_on_for_a_local_app_off_for_public_hosting_and_a_setting_either_way():
    def mcp(env):
        return Settings.from_env(env).mcp

    assert mcp({}) is True
    assert mcp({"SPACE_ID": "someone/controlnet"}) is False  # a Space is public hosting
    assert mcp({"CONTROLNET_DEMO_PUBLIC": "1"}) is False
    assert mcp({"CONTROLNET_DEMO_PUBLIC": "1", "CONTROLNET_DEMO_MCP": "1"}) is True
    assert mcp({"CONTROLNET_DEMO_MCP": "0"}) is False
    assert Settings().mcp is False  # tests build their own settings: no MCP routes unless they ask
