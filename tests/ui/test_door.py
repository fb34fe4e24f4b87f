"""The one door for request values (ui/inputs.py): every event's function gets its values through its inputs'
parsers, every event is queued with a limit, a string is never a path and a file comes only from gradio's upload
folder. The launched app under hostile values: tests/security/."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio.utils import get_upload_folder

from controlnet_demo.errors import UserInputError
from controlnet_demo.ui import inputs
from controlnet_demo.ui.live import LIVE
from controlnet_demo.ui.widgets import handler, image_input


@pytest.fixture(scope="module")
def blocks():
    from controlnet_demo.service import ControlNetService
    from controlnet_demo.settings import Settings
    from controlnet_demo.ui import build

    return build(ControlNetService(Settings(preset="tiny")))


def test_every_event_reaches_its_function_through_the_door_and_the_queue(blocks):
    """A private event is callable by anyone (by its index): each one that runs a function parses its values by their
    kinds (the door marks its functions with `jobs`), waits in the queue, and runs a bounded number at once (the live
    frames: bounded by the service's lane, one waiting per session)."""
    events = [fn for fn in blocks.fns.values() if fn.fn is not None]
    assert len(events) > 60
    for fn in events:
        assert hasattr(fn.fn, "jobs"), fn.name
        assert fn.queue, fn.name
        assert fn.concurrency_limit not in (None, "default") or fn.concurrency_id == LIVE, (fn.name, fn.concurrency_id)
        for component in fn.inputs:
            inputs.kind_of(component)  # every input has a kind


def test_an_input_of_no_declared_kind_fails_the_build():
    with gr.Blocks():
        with pytest.raises(TypeError, match="declare its input kind"):
            handler(lambda page, request=None: page, {"page": gr.HTML()})
        handler(lambda page, request=None: page, {"page": inputs.declare(gr.HTML(), inputs.DRAWING)})


@pytest.fixture
def upload(tmp_path):
    folder = Path(get_upload_folder())
    folder.mkdir(parents=True, exist_ok=True)
    picture = folder / "test_door_picture.png"
    picture.write_bytes(b"\x89PNG")
    link = folder / "test_door_link.png"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/passwd")
    yield picture, link
    picture.unlink(missing_ok=True)
    link.unlink(missing_ok=True)


def test_a_file_input_takes_a_file_from_gradios_upload_folder_and_nothing_else(upload):
    picture, link = upload
    with gr.Blocks():
        image = image_input(label="image")
    assert inputs.parse(image, str(picture)) == picture.resolve()
    assert inputs.parse(image, None) is None
    refusals = set()
    for value in [
        "/etc/passwd",
        "/etc/no-such-file",
        str(Path(get_upload_folder()) / ".." / ".." / "etc" / "passwd"),
        str(link),  # inside, pointing outside
        "https://example.com/a.png",  # gradio left it unfetched (widgets._unfetched)
        "file:///etc/passwd",
        "/proc/self/environ",
        "x" * 100_000,
        {"path": "/etc/passwd"},
    ]:
        with pytest.raises(UserInputError) as refused:
            inputs.parse(image, value)
        refusals.add(str(refused.value))
    assert refusals == {"The image is not an image this app can read. Upload a PNG, JPEG, WebP, GIF, BMP or TIFF file."}


@pytest.mark.parametrize("value", ["/etc/passwd", "file:///etc/passwd", "data:text/plain;base64,aGk=", "x" * 10**6, 7])
def test_a_drawing_is_a_data_url_or_nothing(value):
    with gr.Blocks():
        pad = inputs.declare(gr.Textbox(), inputs.DRAWING)
    assert inputs.parse(pad, "") is None
    assert inputs.parse(pad, "data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"
    with pytest.raises(UserInputError, match="data:image/png;base64"):
        inputs.parse(pad, value)


@pytest.mark.parametrize("value", ["/etc/passwd", "[1, 2]", "x" * 2_000_000, 5])
def test_a_pose_is_openpose_json_text_or_nothing(value):
    with gr.Blocks():
        pose = inputs.declare(gr.Textbox(), inputs.POSE)
    assert inputs.parse(pose, "  ") is None
    assert inputs.parse(pose, '{"people": []}') == '{"people": []}'
    with pytest.raises(UserInputError, match="OpenPose JSON"):
        inputs.parse(pose, value)


def test_a_text_over_its_widgets_length_is_refused_before_anything_reads_it():
    with gr.Blocks():
        prompt = gr.Textbox(label="Prompt", max_length=1000)
        name = gr.Textbox(label="preprocessor")
    assert inputs.parse(prompt, "a cat") == "a cat"
    with pytest.raises(UserInputError, match="1,001 characters; the limit is 1,000"):
        inputs.parse(prompt, "x" * 1001)
    with pytest.raises(UserInputError, match="the limit is 10,000"):
        inputs.parse(name, "x" * 5 * 2**20)


def test_the_client_is_the_proxys_last_entry_behind_a_proxy_and_an_ipv6_client_its_64():
    from types import SimpleNamespace

    from controlnet_demo.ui.public import client_address

    def request(peer: str, forwarded: str | None = None):
        headers = {"x-forwarded-for": forwarded} if forwarded else {}
        return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)

    assert client_address(request("10.1.2.3", "6.6.6.6")) == "10.1.2.3"  # no proxy: the header is the client's word
    assert client_address(request("10.1.2.3", "6.6.6.6, 203.0.113.7"), behind_proxy=True) == "203.0.113.7"
    assert client_address(request("10.1.2.3"), behind_proxy=True) == "10.1.2.3"
    a, b = (client_address(request(f"2001:db8:1:2::{k}")) for k in (1, 2))
    assert a == b == "2001:db8:1:2::/64"
    assert client_address(None) == "unknown"
