"""What the API tests send and read back: requests per endpoint, uploads and drawings, results as pixels."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

from controlnet_demo.conditions import CONDITIONS
from controlnet_demo.paths import EXAMPLES_DIR

EXAMPLES = EXAMPLES_DIR
ENDPOINTS = [*(f"/{c}" for c in CONDITIONS), "/compose"]  # the tabs' (one per condition of the table); and /live
FAST_S = 2.0  # a refusal costs no generation: it must come back at once
# what no hostile value may add to the time of the same request with its working value: far above any machine's
# noise (machines of our kind differ up to 5x), far below what it guards against (a crafted value held the GPU
# slot for 119 s)
HOLD_S = 10.0
PROMPT = "a small test picture"
QUICK = dict(prompt=PROMPT, steps=2, resolution=64, seed=11, randomize_seed=False, num_images=1)
LIVE = dict(prompt=PROMPT, condition="scribble", preprocessor="sketch", seed=3)  # /live's (and an image)
NAN = float("nan")


@dataclass(frozen=True)
class Upload:
    """A file to send: a generated one (see `files`) or one of assets/examples."""

    name: str


@dataclass(frozen=True)
class Drawing:
    """A sketchpad value as the editor sends it: white background, one stroke layer, their composite."""

    name: str  # "house" (strokes of scribble_house.png), "blank" (an untouched canvas) or "text" (a text file)


@dataclass(frozen=True)
class Pad:
    """The page's drawing pad value: a generated file's PNG as a data: URL."""

    name: str


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def resolve(value, files: Path):
    """Upload / Drawing / Pad markers to what gradio_client sends; anything else as is."""
    if isinstance(value, Upload):
        path = files / value.name
        return handle_file(str(path if path.exists() else EXAMPLES / value.name))
    if isinstance(value, Pad):
        return data_url(files / value.name)
    if isinstance(value, Drawing):
        if value.name == "text":  # an upload of a text file named .png
            return {"background": None, "layers": [], "composite": handle_file(str(files / "text.png"))}
        layer, composite = {"house": ("house_layer.png", "house.png"), "blank": ("blank_layer.png", "canvas.png")}[
            value.name
        ]
        return {
            "background": handle_file(str(files / "canvas.png")),
            "layers": [handle_file(str(files / layer))],
            "composite": handle_file(str(files / composite)),
        }
    return value


def working(condition: str) -> dict:
    """A working request for a condition's tab, from the table: its first example (SD1.5's, which the tiny preset
    shows too), or the astronaut photo with its default preprocessor; a condition drawn by hand: the house drawing.
    A preprocessor that needs annotator weights (none here) gives way to 'none': the picture read as the map."""
    cond = CONDITIONS[condition]
    if cond.drawn:
        return dict(image=Drawing("house"), preprocessor=cond.default_preprocessor)
    file, _, preprocessor = next(iter(cond.examples_for("sd15")), ("astronaut.jpg", "", cond.default_preprocessor))
    return dict(image=Upload(file), preprocessor="none" if cond.preprocessor(preprocessor).weights else preprocessor)


# A working request per endpoint; the bad-input cases override one or two of its values.
REQUESTS = {
    **{f"/{c}": working(c) for c in CONDITIONS},
    "/compose": dict(
        condition_1="canny",
        image_1=Upload("astronaut.jpg"),
        preprocessor_1="canny",
        mask_1=Upload("left_half.png"),
        # a scribble preprocessor in a slot whose dropdown starts with pose's: the API sends no condition change
        condition_2="scribble",
        image_2=Upload("scribble_house.png"),
        preprocessor_2="sketch",
    ),
}


def request(endpoint: str, files: Path, **overrides) -> dict:
    if endpoint == "/live":
        values = {**LIVE, "drawing": Drawing("house")}
    else:  # (a condition added to the table since: a test's)
        values = {**QUICK, **(REQUESTS.get(endpoint) or working(endpoint.strip("/")))}
    return {k: resolve(v, files) for k, v in {**values, **overrides}.items()}


@dataclass
class Result:
    images: list[str]  # local copies of the result PNGs
    maps: list[str]
    params: dict
    seed: int
    residuals: dict  # the residual-magnitude bar plot's value
    check: str  # the control check, as the UI shows it


def generate(client: Client, endpoint: str, files: Path, **overrides) -> Result:
    images, maps, params, seed, residuals, check, *_residual_maps = client.predict(
        api_name=endpoint, **request(endpoint, files, **overrides)
    )
    if isinstance(params, str):  # a JSON output may arrive as a file
        params = json.loads(Path(params).read_text())
    return Result([g["image"] for g in images], [m["image"] for m in maps], params, int(seed), residuals, check)


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def raw_data(http, api: dict, endpoint: str, values: dict, verbatim: dict | None = None) -> list:
    """The request's data list as the browser sends it, for raw HTTP calls: files (handle_file values) uploaded
    through `http` (an httpx client on .../gradio_api), `verbatim` values sent as they are, every parameter in
    the endpoint's order."""

    def uploaded(value):  # a file (handle_file's value) anywhere inside, e.g. a sketchpad's layers
        if isinstance(value, dict) and "path" in value:
            with open(value["path"], "rb") as f:
                [path] = http.post("/upload", files={"files": f}).raise_for_status().json()
            return {"path": path, "orig_name": Path(value["path"]).name, "meta": value["meta"]}
        if isinstance(value, dict):
            return {k: uploaded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [uploaded(v) for v in value]
        return value

    values = {name: uploaded(value) for name, value in values.items()}
    values.update(verbatim or {})
    params = api["named_endpoints"][endpoint]["parameters"]
    return [values.get(p["parameter_name"], p["parameter_default"]) for p in params]


@contextlib.contextmanager
def counting_steps(demo, pause_s: float = 0.0):
    """Within the block, the demo's engine records every denoising step it finishes (and waits pause_s after
    each, to keep a job running while a test acts); yields the list of steps."""
    steps: list[int] = []
    original = demo.engine.generate

    def counting_generate(req, on_step=None, **kw):
        def step(i, n):
            steps.append(i)
            time.sleep(pause_s)
            on_step(i, n)

        return original(req, on_step=step, **kw)

    demo.engine.generate = counting_generate
    try:
        yield steps
    finally:
        demo.engine.generate = original


def wait_for(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


class RawSession:
    """One browser tab on the queue protocol itself (queue/join, then the session's queue/data stream), with the
    page's trigger_mode="always_last": a stroke while the last event is still out sends no event but marks one to
    send, with the latest drawing, when that one completes. Its files are uploaded once."""

    def __init__(self, url: str, api: dict, endpoint: str, values: dict):
        import uuid

        import httpx

        self.http = httpx.Client(base_url=f"{url}/gradio_api", timeout=120)
        self.session = uuid.uuid4().hex
        config = httpx.get(f"{url}/config", timeout=30).json()
        self.fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == endpoint.strip("/"))
        self.data = raw_data(self.http, api, endpoint, values)
        self.strokes, self.sent, self.completed, self.errors, self.messages = 0, 0, 0, [], []
        self._lock = threading.Lock()
        self._out = self._again = False

    def stroke(self) -> None:
        with self._lock:
            self.strokes += 1
            if self._out:
                self._again = True
                return
            self._out = True
        self._send()

    def _send(self) -> None:
        body = {"data": self.data, "fn_index": self.fn, "session_hash": self.session, "event_data": None}
        reply = self.http.post("/queue/join", json=body)
        with self._lock:
            if reply.status_code != 200:
                self.errors.append(f"join: {reply.status_code} {reply.text[:200]}")
                self._out = False
            else:
                self.sent += 1

    def read(self, until) -> None:
        """Read the session's stream until `until()` and nothing is out."""
        while not (until() and not self._out):
            with self.http.stream("GET", "/queue/data", params={"session_hash": self.session}) as stream:
                for line in stream.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    self.messages.append(message)
                    if message.get("msg") == "process_completed":
                        with self._lock:
                            if message.get("success"):
                                self.completed += 1
                            else:
                                self.errors.append(str(message.get("output"))[:300])
                            again, self._again = self._again, False
                            self._out = again
                        if again:
                            self._send()
                    elif message.get("msg") == "close_stream":
                        break
            time.sleep(0.05)
