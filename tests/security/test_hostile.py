"""Hostile tests: the app launched in its PUBLIC configuration, against visitors who mean harm, over raw HTTP.

1. Every string-typed parameter of every named endpoint, and the first inputs (and every file input) of every event
   in the page's config, called by index as the page calls them (private events too: hidden from the docs, not from
   callers), get server paths, file: URLs, /proc files, a 5 MB string, deeply nested JSON and values aimed at the
   message templates. Each answers within HOLD_S (x slowdown) more than the same request with its working value
   (one over it under load is sent again alone, and judged by that), in words: no traceback, no bare exception
   name, no server path it was not sent, never the content of a file it named (a line of /etc/passwd, this
   process's environment, the pixels of a picture outside the upload folder); and an existing and a missing path
   get the same refusal.
2. Values aimed at every message template, on the Korean and Chinese pages: answered as quickly, in words.
3. Bombs (a zip bomb named .npz, a 400-megapixel PNG of 50 kB, that PNG inline as a data: URL) through every file
   input of every event: the server process's resident memory grows by less than MEMORY_MB, each answer in words.
   And a flood of new session ids (a client picks its own) makes the server hold less than SESSIONS_MB.
4. The control-map cache stays under its byte limit under 50 different large pictures.
5. A visitor flooding the queue cannot keep a second one out (the per-client cap, behind a proxy).
6. A request body over the limit is refused (413) before it is read, and the app keeps serving.
7. The public defaults: a server listening beyond this machine, or on a Space, is public unless told otherwise.

Every check runs beside a control that shows it able to fail: the answer checks on made-up answers, each working
request succeeds, a legit upload of the outside picture IS recognised by the leak check, the memory meter sees a
400 MB allocation, the page's language IS used, the flooder IS refused, the cache IS used.

The probes are sent from WORKERS processes of their own (spawned), one session each like a browser tab: the app runs
in this process, and clients here would take its interpreter lock and make every answer look slow.
HOSTILE_REPORT=<file> writes every problem found there (the assertion shows them grouped).
"""

from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import re
import resource
import struct
import threading
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from controlnet_demo.conditions import CONDITIONS
from controlnet_demo.paths import EXAMPLES_DIR
from controlnet_demo.settings import Settings
from tests.apiclient import HOLD_S, counting_steps, raw_data, request
from tests.builders import serve

pytestmark = pytest.mark.slow  # launches the app three times and sends it a few thousand requests

WORKERS = 5  # probes in flight at once: under the public cap of 6 jobs per client (they all come from 127.0.0.1)
JOBS_PER_CLIENT = 6
MEMORY_MB = 300  # what a bomb may add to the server's resident memory
PASSWD = "/etc/passwd"
MISSING = "/etc/no-such-file-xyz"
PASSWD_LINE = "root:x:0:0"
# a real picture outside the upload folder, one the working requests do not upload (theirs come back as maps)
EXAMPLE = str((EXAMPLES_DIR / "cat.jpg").resolve())
FILE_DATA_META = {"_type": "gradio.FileData"}
FILE_KINDS = ("image", "file", "imageeditor", "sketchpad")  # config component types whose value is a file

# Python's exception names, alone or with their message: a visitor must get words, not the server's internals
EXCEPTION_NAME = re.compile(r"\b(?:[A-Z][a-z0-9]+)+(?:Error|Exception)\b|\bStopIteration\b|\bKeyboardInterrupt\b")
INTERNALS = ("Traceback", 'File "', "Could not preprocess", "site-packages", "dist-packages", '.py", line')
SERVER_PATH = re.compile(r"(?<![\w.:/~\-])/(?:[\w.\-]+/)+[\w.\-]+")


# -- what is sent ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A value sent as this JSON text verbatim (JSON nested deeper than Python's json module writes)."""

    text: str


def nested_list(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


def nested_object(depth: int) -> Raw:
    return Raw('{"a":' * depth + "1" + "}" * depth)


def file_data(path: str, **more) -> dict:
    """A file input's value naming a server path, as a hostile client writes it (gradio_client would upload a local
    file instead)."""
    return {"path": path, "meta": FILE_DATA_META, **more}


def editor_value(fd) -> dict:
    """An image editor's (a gr.Sketchpad's) value whose every part is `fd`."""
    return {"background": fd, "layers": [fd], "composite": fd}


TEMPLATE_BAIT = " must be between 1 and 2; got " * 200  # the shape of the "between {lo} and {hi}; got {value}" text
FORMAT_BAIT = "{0}{name}{value!r}{n:>999999999}{what:>999999999}{limit:>999999999}{__class__.__init__}"
NAMES_A_PICTURE = ("example", "secret")  # payloads whose answers' pictures are compared with the outside ones


def string_payloads(secret: str) -> dict[str, object]:
    """What a string-typed input gets (name -> value): paths that exist, one that does not, URLs and /proc files,
    a 5 MB string, nested JSON, values aimed at the message templates."""
    return {
        "passwd": PASSWD,
        "missing": MISSING,
        "example": EXAMPLE,
        "secret": secret,
        "file-url": "file://" + PASSWD,
        "fd0": "/proc/self/fd/0",
        "environ": "/proc/self/environ",
        "5MB": "x" * (5 * 2**20),
        "brackets": "[" * 100_000,
        "nested-10k": nested_list(10_000),
        "nested-object-10k": nested_object(10_000),
        "pose-nested": '{"people": ' + "[" * 10_000 + "]" * 10_000 + "}",
        "template": TEMPLATE_BAIT,
        "format": FORMAT_BAIT,
    }


def file_payloads(secret: str, upload_folder: str) -> dict[str, object]:
    """What a file input also gets: FileData dicts naming server paths."""
    return {
        "fd-passwd": file_data(PASSWD),
        "fd-missing": file_data(MISSING),
        "fd-example": file_data(EXAMPLE),
        "fd-secret": file_data(secret),
        "fd-file-url": file_data("file://" + PASSWD, url="file://" + PASSWD),
        "fd-environ": file_data("/proc/self/environ"),
        "fd-fd0": file_data("/proc/self/fd/0"),
        "fd-traversal": file_data(f"{upload_folder}/../../../../etc/passwd"),
    }


def small_payloads(secret: str, upload_folder: str, file_kind: bool) -> dict[str, object]:
    """The shorter list, for every event of the page's config."""
    every = string_payloads(secret)
    chosen = {k: every[k] for k in ("passwd", "missing", "file-url", "brackets", "nested-10k", "template")}
    if file_kind:
        files = file_payloads(secret, upload_folder)
        chosen.update({k: files[k] for k in ("fd-passwd", "fd-missing", "fd-secret")})
    return chosen


# the endpoints whose success costs seconds (a frame at the live speed; five generations): their text parameters
# (the same widgets as the tabs': the same parser) get the paths that succeed as prose on the other endpoints only
EXPENSIVE = ("/live", "/compare")
PROSE = ("prompt", "negative_prompt")
PATHS_ELSEWHERE = ("example", "secret", "file-url", "fd0", "environ")


def names_a_picture(name: str) -> bool:
    return any(part in name for part in NAMES_A_PICTURE)


# -- the raw queue protocol --------------------------------------------------------------------------------------


def body_of(data: list, fn_index: int, session: str) -> bytes:
    """The queue/join body as the page sends it; Raw values written verbatim."""
    raws: dict[str, str] = {}

    def marked(value):
        if isinstance(value, Raw):
            key = f"\u0001raw{len(raws)}\u0001"
            raws[key] = value.text
            return key
        return value

    text = json.dumps(
        {
            "data": [marked(v) for v in data],
            "fn_index": fn_index,
            "session_hash": session,
            "event_data": None,
            "trigger_id": None,
        }
    )
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw)
    return text.encode()


@dataclass
class Answer:
    status: int  # the join's HTTP status
    ok: bool  # the event completed successfully
    text: str | None  # the error's words (None: gradio hid them), or the refused join's detail
    raw: str  # everything the server sent back about this event
    output: object = None  # the completed message's output
    seconds: float = 0.0  # the server's time on it: from its start (process_starts) to its answer
    wall: float = 0.0  # from the join to the answer, queue included

    def shown(self) -> str:
        """The answer as a report quotes it (its first 300 characters)."""
        what = "success" if self.ok else f"HTTP {self.status}" if self.status != 200 else "error"
        said = self.text if self.text is not None else json.dumps(self.output) if self.output is not None else self.raw
        return f"[{what}, {self.seconds:.2f} s] {said}"[:300]


def ask(
    url: str,
    fn_index: int,
    data: list,
    headers: dict | None = None,
    timeout_s: float = 180,
    http: httpx.Client | None = None,
    session: str | None = None,
) -> Answer:
    """One event, as a browser tab calls it: queue/join, then the session's stream until its answer. A session of
    its own unless `session` is given."""
    if http is None:
        with httpx.Client(timeout=timeout_s) as own:
            return ask(url, fn_index, data, headers, timeout_s, own, session)
    session = session or uuid.uuid4().hex
    body = body_of(data, fn_index, session)
    begun = time.monotonic()
    while True:  # our own probes in flight may hold the per-client cap for a moment: wait, do not count it
        reply = http.post(
            f"{url}/gradio_api/queue/join",
            content=body,
            headers={"content-type": "application/json", **(headers or {})},
        )
        if not (reply.status_code == 503 and "already have" in reply.text and time.monotonic() - begun < 60):
            break
        time.sleep(0.1)
    joined = time.monotonic()
    if reply.status_code != 200:
        return Answer(reply.status_code, False, _detail(reply), reply.text, None, joined - begun, joined - begun)
    started, lines = joined, []
    with http.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            lines.append(line)
            message = json.loads(line[5:])
            kind = message.get("msg")
            if kind == "process_starts":
                started = time.monotonic()
            elif kind == "process_completed":
                now = time.monotonic()
                output = message.get("output") or {}
                ok = bool(message.get("success"))
                text = None if ok else output.get("error")
                return Answer(200, ok, text, "\n".join(lines), output, now - started, now - begun)
            elif kind == "close_stream":
                break
    now = time.monotonic()
    raw = "\n".join(lines) or "(the stream closed without an answer)"
    return Answer(200, False, None, raw, None, now - started, now - begun)


def _detail(reply: httpx.Response) -> str:
    try:
        detail = reply.json().get("detail")
        return detail if isinstance(detail, str) else json.dumps(detail)
    except Exception:
        return reply.text


def upload(url: str, name: str, content: bytes) -> dict:
    """A file uploaded as the page uploads it: its FileData value."""
    reply = httpx.post(f"{url}/gradio_api/upload", files={"files": (name, content)}, timeout=60)
    [path] = reply.raise_for_status().json()
    return file_data(path, orig_name=name)


# -- what an answer must be ----------------------------------------------------------------------------------------


def in_words(text) -> bool:
    """A sentence a person can act on: words of letters (any script: a Chinese sentence has no spaces), not a
    bare "Error" or "null"."""
    if not isinstance(text, str):
        return False
    return len(re.findall(r"[^\W\d_]", text)) >= 8 and len(re.findall(r"[^\W\d_]{2,}", text)) >= 2


def foreign_paths(text: str, sent: str) -> list[str]:
    """Server paths in `text` that the request did not send itself (reprlib's shortening "..." allowed)."""
    found = []
    for token in SERVER_PATH.findall(text):
        pieces = [p for p in token.split("...") if len(p) >= 4]
        if not all(p in sent for p in pieces):
            found.append(token)
    return found


def problems_of(answer: Answer, limit_s: float, sent: str, secrets: list[str]) -> list[str]:
    """What is wrong with `answer` (empty: nothing)."""
    if answer.status == 0:
        return [answer.raw]  # no answer at all, twice
    found = []
    if answer.seconds > limit_s:
        found.append(f"took {answer.seconds:.1f} s (limit {limit_s:.1f} s)")
    if answer.status >= 500 and answer.status != 503:
        found.append(f"HTTP {answer.status}: the server failed on it")
    if not answer.ok:
        text = answer.text
        if not in_words(text):
            found.append(
                "an error not in words" + (" (gradio hid it: an unexpected exception)" if text is None else "")
            )
        text = text or ""
        found += [f"shows {mark!r}" for mark in INTERNALS if mark in text]
        found += [f"names an exception: {name!r}" for name in sorted(set(EXCEPTION_NAME.findall(text)))]
        found += [f"names a server path it was not sent: {p!r}" for p in foreign_paths(text, sent)]
    found += [f"answers with a secret: {s[:30]!r}" for s in secrets if s in answer.raw]
    return found


def result_files(output) -> list[dict]:
    """Every file an answer hands back (FileData dicts, anywhere in its data)."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if isinstance(value.get("url"), str) or (value.get("meta") or {}).get("_type") == "gradio.FileData":
                found.append(value)
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk((output or {}).get("data"))
    return found


def same_picture(picture: np.ndarray, reference: np.ndarray) -> bool:
    """`picture` is `reference` (resized to its size): what a picture read from a path looks like as a map."""
    h, w = picture.shape[:2]
    ref = np.asarray(Image.fromarray(reference).convert("RGB").resize((w, h), Image.Resampling.BILINEAR), np.float32)
    got = np.asarray(Image.fromarray(picture).convert("RGB"), np.float32)
    return float(np.abs(got - ref).mean()) < 12.0


def leaked_pictures(url: str, output, outside: dict[str, np.ndarray], http: httpx.Client | None = None) -> list[str]:
    """The outside pictures an answer's files show, and files that hold /etc/passwd."""
    found = []
    for fd in result_files(output):
        link = fd.get("url") or f"{url}/gradio_api/file={fd.get('path')}"
        try:
            reply = (http or httpx).get(link, timeout=30)
        except httpx.HTTPError:  # gradio rewrote the (content-addressed) file while serving it: once more
            time.sleep(0.2)
            reply = (http or httpx).get(link, timeout=30)
        if reply.status_code != 200:
            continue
        if PASSWD_LINE.encode() in reply.content:
            found.append(f"{link} holds /etc/passwd")
        try:
            with Image.open(io.BytesIO(reply.content)) as im:
                picture = np.asarray(im.convert("RGB"))
        except Exception:
            continue
        found += [
            f"{link} shows the outside picture {name}" for name, ref in outside.items() if same_picture(picture, ref)
        ]
    return found


# -- many probes at once, from processes of their own ----------------------------------------------------------


@dataclass
class Probe:
    label: str
    fn_index: int
    data: list
    leaks: bool = False  # names a file: any picture it answers with is compared with the outside pictures
    headers: dict = field(default_factory=dict)
    control: str | None = None  # the label of the same request with its working value: the time it may add to
    must_succeed: bool = False  # a control that is a working request


_worker: dict = {}  # in each worker process: the outside pictures, its HTTP client, its session


def _worker_start(outside: dict[str, np.ndarray]) -> None:
    _worker["outside"] = outside
    _worker["http"] = httpx.Client(timeout=180)
    # one session per worker, like a browser tab: gradio builds a SessionState (~1 MB, tens of ms) for each new one
    _worker["session"] = uuid.uuid4().hex


def _worker_ask(job: tuple[str, Probe]) -> tuple[str, Answer, list[str]]:
    url, probe = job
    http = _worker["http"]
    for _ in range(2):  # a reset on a kept-alive connection the server had just closed: once more, on a new one
        try:
            answer = ask(url, probe.fn_index, probe.data, probe.headers, http=http, session=_worker.get("session"))
            break
        except Exception as exc:  # no answer at all
            answer = Answer(0, False, None, f"no answer: {exc!r}", None, float("inf"), float("inf"))
            time.sleep(0.2)
    leaks = leaked_pictures(url, answer.output, _worker["outside"], http) if probe.leaks and answer.ok else []
    return probe.label, answer, leaks


def run_probes(
    url: str,
    probes: list[Probe],
    slowdown: float,
    secrets: list[str],
    outside: dict[str, np.ndarray],
    memory_mb: float | None = None,
) -> tuple[list[str], dict[str, Answer]]:
    """Every probe, WORKERS at a time: (what is wrong, as "label: problem -> answer" lines; label -> Answer).
    A probe may take HOLD_S x slowdown more than its control (the same request with the working value).
    With `memory_mb`, one at a time from this process instead, each allowed that much growth of the server's
    resident memory (concurrent requests would blur what each one costs)."""
    assert len({p.label for p in probes}) == len(probes)
    answers: dict[str, Answer] = {}
    leaks: dict[str, list[str]] = {}
    grown: dict[str, float] = {}
    began = time.monotonic()
    if memory_mb is not None:
        _worker_start(outside)
        try:
            for probe in probes:
                with PeakMemory() as memory:
                    label, answer, leaked = _worker_ask((url, probe))
                answers[label], leaks[label], grown[label] = answer, leaked, memory.grown_mb
        finally:
            _worker.pop("http").close()
            _worker.pop("session")
    else:
        context = multiprocessing.get_context("spawn")  # not fork: this process runs the server's threads
        with context.Pool(WORKERS, initializer=_worker_start, initargs=(outside,)) as pool:
            for label, answer, leaked in pool.imap_unordered(_worker_ask, [(url, p) for p in probes], chunksize=1):
                answers[label], leaks[label] = answer, leaked
    by_label = {p.label: p for p in probes}

    def limit_of(probe: Probe, controls: dict[str, Answer]) -> float:
        if probe.control is None:  # a control: its time is the baseline, not judged
            return float("inf")
        control = controls.get(probe.control)
        return HOLD_S * slowdown + (control.seconds if control is not None and control.ok else 0.0)

    # under load (WORKERS at once, and the events of other queues beside them on 2 cores) any answer may be slow:
    # a probe over its limit is sent again alone, after its control, and judged by that
    again: dict[str, tuple[Answer, Answer | None]] = {}
    for probe in probes:
        if answers[probe.label].seconds > limit_of(probe, answers):
            control = by_label.get(probe.control)
            alone = ask(url, control.fn_index, control.data, control.headers) if control else None
            again[probe.label] = (ask(url, probe.fn_index, probe.data, probe.headers), alone)
    problems = []
    for probe in probes:
        answer = answers[probe.label]
        limit_s = limit_of(probe, answers)
        note = ""
        if probe.label in again:
            alone, control = again[probe.label]
            limit_s = limit_of(probe, {probe.control: control} if control else {})
            note = f" (under load {answer.seconds:.1f} s)"
            answer = Answer(**{**answer.__dict__, "seconds": min(answer.seconds, alone.seconds)})
        sent = body_of(probe.data, probe.fn_index, "").decode()
        found = problems_of(answer, limit_s, sent, secrets) + leaks[probe.label]
        if probe.must_succeed and not answer.ok:
            found.insert(0, "the working request failed")
        if memory_mb is not None and grown[probe.label] >= memory_mb:
            found.insert(0, f"the server's resident memory grew {grown[probe.label]:.0f} MB (limit {memory_mb} MB)")
        problems += [f"{probe.label}: {p}{note if p.startswith('took') else ''} -> {answer.shown()}" for p in found]
    done = [a for a in answers.values() if a.ok]
    print(
        f"{len(probes)} probes in {time.monotonic() - began:.0f} s ({len(again)} sent again alone): {len(done)} succeeded "
        f"({sum(a.seconds for a in done):.0f} s on the server), the others took "
        f"{sum(a.seconds for a in answers.values() if not a.ok):.0f} s; the slowest "
        f"{max((a.seconds for a in answers.values()), default=0):.2f} s"
    )
    return problems, answers


def same_refusal(
    url: str, probes: list[Probe], answers: dict[str, Answer], pairs: list[tuple[str, str, str, str]]
) -> list[str]:
    """An existing and a missing path get the same answer (after the path itself is replaced): no caller learns
    which server paths exist. `pairs`: (label of the existing one, its path, label of the missing one, its path).
    A pair that differs under load is sent again, alone, and judged by that."""
    by_label = {p.label: p for p in probes}

    def shown(answer: Answer, path: str):
        return answer.status, answer.ok, None if answer.ok else (answer.text or "").replace(path, "<path>")

    found = []
    for there, there_path, gone, gone_path in pairs:
        a, b = answers.get(there), answers.get(gone)
        if a is None or b is None or shown(a, there_path) == shown(b, gone_path):
            continue
        a, b = (ask(url, by_label[x].fn_index, by_label[x].data, by_label[x].headers) for x in (there, gone))
        if shown(a, there_path) != shown(b, gone_path):
            found.append(f"{there} vs {gone}: the answers differ: {a.shown()!r} != {b.shown()!r}")
    return found


def report(problems: list[str], n: int = 30) -> str:
    """The problems grouped by what is wrong and the kind of input (not where, nor which value): each group's count,
    its values and its first case with the answer. HOSTILE_REPORT=<file> writes every problem there."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for line in problems:
        where, _, rest = line.partition(": ")
        what = re.sub(r"[0-9.]+ s\b", "N s", rest.split(" -> ")[0])
        what = re.sub(r"https?://\S+", "<file>", what)
        if " = " in where:
            kind, value = re.findall(r"\((\w+)\) = ", where)[-1:] or ["?"], where.rsplit(" = ", 1)[-1]
            key = f"{what} [into {kind[0]}]"
        else:  # a control: the working request, or an event with the page's defaults
            key, value = f"{what} [{where.split(') ', 1)[-1]}]", where.split(" (", 1)[0]
        groups.setdefault(key, []).append((value, line))
    if path := os.environ.get("HOSTILE_REPORT"):
        Path(path).write_text("\n".join(problems))
    lines = []
    for key, cases in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        values = sorted({v for v, _ in cases})
        lines.append(f"{len(cases)} x {key}, values: {', '.join(values)[:200]}\n    e.g. {cases[0][1]}")
    return f"{len(problems)} problems in {len(groups)} groups:\n" + "\n".join(lines[:n])


# -- the app ---------------------------------------------------------------------------------------------------


@dataclass
class App:
    url: str
    service: object
    blocks: object
    api: dict
    config: dict

    def fn_index(self, endpoint: str) -> int:
        return next(d["id"] for d in self.config["dependencies"] if d.get("api_name") == endpoint.strip("/"))

    def dependency(self, fn_index: int) -> dict:
        return next(d for d in self.config["dependencies"] if d["id"] == fn_index)

    def components(self) -> dict[int, dict]:
        return {c["id"]: c for c in self.config["components"]}


def describe(url: str, service, blocks) -> App:
    from gradio_client import Client

    api = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
    config = httpx.get(f"{url}/config", timeout=30).json()
    return App(url, service, blocks, api, config)


@pytest.fixture(scope="module", autouse=True)
def upload_folder(tmp_path_factory):
    """gradio's upload folder of this module's apps, of their own: /tmp/gradio is shared with every other gradio
    process on the machine, whose closing apps delete the (content-addressed) uploads they share with ours."""
    folder = tmp_path_factory.mktemp("gradio-uploads")
    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    try:
        yield str(folder.resolve())
    finally:
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before


def public_settings(**changes) -> Settings:
    """The app as a public host runs it, with no rate limit (the probes would be refused by it instead of read)."""
    values = dict(
        preset="tiny",
        public=True,
        rate_limit_per_minute=0,
        jobs_per_client=JOBS_PER_CLIENT,
        max_request_mb=32,
        sessions=Settings.from_env({"CONTROLNET_DEMO_PUBLIC": "1"}).sessions,
    )
    return Settings(**{**values, **changes})


@pytest.fixture(scope="module")
def app(upload_folder):
    url, service, blocks = serve(public_settings())
    try:
        yield describe(url, service, blocks)
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> dict[str, tuple[str, np.ndarray]]:
    """Pictures on the server that no request may read: name -> (path, pixels). An example picture (outside the
    upload folder, though gradio serves the examples' folder) and a private one in a folder of its own."""
    folder = tmp_path_factory.mktemp("private")
    secret = folder / "secret.png"
    y, x = np.mgrid[0:256, 0:384]
    pattern = np.stack([(x * 2) % 256, (y * 3) % 256, ((x // 32 + y // 32) % 2) * 255], axis=2).astype(np.uint8)
    Image.fromarray(pattern).save(secret)
    with Image.open(EXAMPLE) as im:
        example = np.asarray(im.convert("RGB"))
    return {"example": (EXAMPLE, example), "secret": (str(secret), pattern)}


def pictures_of(outside: dict) -> dict[str, np.ndarray]:
    return {name: pixels for name, (_, pixels) in outside.items()}


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    """Texts that must never come back: a line of /etc/passwd, this process's environment."""
    found = [PASSWD_LINE]
    for name in ("HOME", "PATH"):
        if len(os.environ.get(name, "")) >= 5:
            found.append(f"{name}={os.environ[name]}")
    return found


def working_values(endpoint: str, files: Path) -> dict:
    """A request that works, per named endpoint (tests/apiclient's; the comparison takes the Compose tab's);
    preprocessor "none" where it can be, so that a picture read from a path would come back as the map itself."""
    if endpoint == "/compare":
        return request("/compose", files, steps=1)
    if endpoint == "/detect":
        return {
            "image": request("/canny", files)["image"],
            "condition": "canny",
            "preprocessor": "none",
            "preprocess_resolution": 128,
        }
    if endpoint == "/live":
        return request("/live", files)
    if endpoint in ("/canny", "/depth", "/pose"):
        return request(endpoint, files, steps=1, preprocessor="none")
    return request(endpoint, files, steps=1)


def kind_of_parameter(param: dict) -> str | None:
    """The kind of a string-typed parameter ("text", "file" or "editor"); None for a number or a flag."""
    t = str(param["python_type"]["type"])
    if t == "filepath":
        return "file"
    if t.startswith("dict(background"):
        return "editor"
    if t == "str" or t.startswith("Literal["):
        return "text"
    return None


def named_bases(app: App, files: Path) -> dict[str, list]:
    """Each named endpoint's working request as the data list of its event (files uploaded)."""
    with httpx.Client(base_url=f"{app.url}/gradio_api", timeout=60) as http:
        bases = {ep: raw_data(http, app.api, ep, working_values(ep, files)) for ep in app.api["named_endpoints"]}
    for endpoint, data in bases.items():  # the API's parameters are the event's inputs, in order
        dep = app.dependency(app.fn_index(endpoint))
        assert len(data) == len(dep["inputs"]), endpoint
    return bases


def warm_up(app: App, bases: dict[str, list]) -> None:
    """Each endpoint once: its models loaded, so that the first probes are not timed with the loading."""
    for endpoint, data in bases.items():
        ask(app.url, app.fn_index(endpoint), data)


# -- 1. every string parameter, every event ------------------------------------------------------------------


def test_the_checks_catch_what_they_guard():
    """The answer checks themselves, on answers made up to break each rule (and one that breaks none)."""
    sent = body_of(["/etc/passwd"], 4, "").decode()

    def problems(text, ok=False, status=200, seconds=0.1, raw="") -> list[str]:
        return problems_of(Answer(status, ok, text, raw or str(text), None, seconds), HOLD_S, sent, [PASSWD_LINE])

    assert problems("The image is not an image this app can read. Upload a PNG or JPEG file.") == []
    assert problems("图像不是此应用可以读取的图片。请上传 PNG 文件。") == []
    assert problems("Preprocessor must be one of the choices: canny, none; got '/etc/passwd'.") == []  # as sent
    for text, problem in [
        (None, "not in words"),
        ("Error", "not in words"),
        ("RecursionError", "names an exception"),
        ("KeyError: 'people' was not found in the pose", "names an exception"),
        ('Traceback (most recent call last):\n  File "x.py", line 1', "shows"),
        ("Could not preprocess input component at index 3", "shows"),
        ("The picture /tmp/gradio/1f2e/astronaut.jpg could not be read", "server path"),
        ("The file starts with root:x:0:0:root:/root:/bin/bash", "secret"),
    ]:
        assert any(problem in p for p in problems(text)), (text, problems(text))
    assert any("took" in p for p in problems("The image is not readable at all here.", seconds=HOLD_S + 1, raw="x"))
    assert any("failed" in p for p in problems("Internal Server Error", status=500))
    y, x = np.mgrid[0:64, 0:96]
    picture = np.stack([x * 2, y * 3, (x + y) % 256], axis=2).astype(np.uint8)
    assert same_picture(np.asarray(Image.fromarray(picture).resize((48, 32))), picture)
    assert not same_picture(255 - picture, picture)


def test_the_working_requests_succeed_and_the_leak_check_sees_a_leak(app, files, outside, slowdown):
    """The probes' controls: each named endpoint's working request (whose other values the probes keep) succeeds,
    and a legit upload of the outside picture IS recognised by the leak check in what comes back."""
    bases = named_bases(app, files)
    warm_up(app, bases)
    for endpoint, data in bases.items():
        answer = ask(app.url, app.fn_index(endpoint), data)
        assert answer.ok, (endpoint, answer.shown())
    secret_path, secret = outside["secret"]
    data = list(bases["/detect"])
    data[0] = upload(app.url, "secret.png", Path(secret_path).read_bytes())
    answer = ask(app.url, app.fn_index("/detect"), data)
    assert answer.ok, answer.shown()
    assert leaked_pictures(app.url, answer.output, {"secret": secret}), "the leak check sees nothing"
    assert not leaked_pictures(app.url, answer.output, {"example": outside["example"][1]})  # and tells them apart


def shared_by(endpoint: str, name: str) -> tuple[str, str]:
    """Which code a parameter's value goes through: every condition's tab is one function (ui/condition_tab.py), and
    each Compose unit one (image_1, image_2, ...): a parameter is probed where it first comes, once."""
    family = "a condition's tab" if endpoint.strip("/") in CONDITIONS else endpoint
    base, _, number = name.rpartition("_")
    return family, base if number.isdigit() and base else name


def test_every_string_parameter_of_every_named_endpoint(app, files, outside, secrets, slowdown, upload_folder):
    secret_path = outside["secret"][0]
    strings, filed = string_payloads(secret_path), file_payloads(secret_path, upload_folder)
    bases = named_bases(app, files)
    warm_up(app, bases)
    probes, pairs, probed = [], [], set()
    for endpoint, data in bases.items():
        fn = app.fn_index(endpoint)
        control = f"{endpoint} (the working request)"
        probes.append(Probe(control, fn, data, must_succeed=True))
        for position, param in enumerate(app.api["named_endpoints"][endpoint]["parameters"]):
            kind = kind_of_parameter(param)
            if kind is None or (shared := (*shared_by(endpoint, param["parameter_name"]), kind)) in probed:
                continue
            probed.add(shared)
            payloads = dict(strings)
            if param["parameter_name"] in PROSE and endpoint in EXPENSIVE:  # the paths elsewhere only
                payloads = {k: v for k, v in payloads.items() if k not in PATHS_ELSEWHERE}
            if kind == "file":
                payloads.update(filed)
            elif kind == "editor":
                payloads.update({name: editor_value(fd) for name, fd in filed.items()})
            where = f"{endpoint} {param['parameter_name']} ({kind})"
            for name, value in payloads.items():
                sent = list(data)
                sent[position] = value
                probes.append(Probe(f"{where} = {name}", fn, sent, leaks=names_a_picture(name), control=control))
            pairs.append((f"{where} = passwd", PASSWD, f"{where} = missing", MISSING))
            if kind != "text":
                pairs.append((f"{where} = fd-passwd", PASSWD, f"{where} = fd-missing", MISSING))
    assert len(probes) > 400  # every endpoint's string parameters were found
    print(f"{len(probes)} probes")
    problems, answers = run_probes(app.url, probes, slowdown, secrets, pictures_of(outside))
    problems += same_refusal(app.url, probes, answers, pairs)
    assert not problems, report(problems)


def test_every_event_of_the_page_by_index(app, outside, secrets, slowdown, upload_folder):
    """Every event the page's config lists (private ones too), called by its index with the config's default values,
    each of its first three inputs (and every file input) given the shorter list."""
    components = app.components()
    secret_path = outside["secret"][0]
    probes, pairs, probed = [], [], set()
    for dep in app.config["dependencies"]:
        if not dep.get("backend_fn") or not dep["inputs"]:
            continue
        defaults = [components[i].get("props", {}).get("value") for i in dep["inputs"]]
        kinds = [components[i]["type"] for i in dep["inputs"]]
        # every tab's events are made by the same functions: one event of each function and inputs is probed
        made_by = (getattr(app.blocks.fns[dep["id"]].fn, "__name__", None), tuple(kinds))
        if f"/{dep.get('api_name')}" not in app.api["named_endpoints"] and made_by in probed:
            continue
        probed.add(made_by)
        control = f"event {dep['id']} ({dep.get('api_name')}) with its default values"
        probes.append(Probe(control, dep["id"], defaults))
        chosen = [k for k in range(len(kinds)) if k < 3 or kinds[k] in FILE_KINDS]
        for position in chosen:
            kind = kinds[position]
            payloads = small_payloads(secret_path, upload_folder, kind in FILE_KINDS)
            if position >= 3:  # a later file input: the paths only
                payloads = {k: payloads[k] for k in ("fd-passwd", "fd-missing", "fd-secret")}
            if kind in ("imageeditor", "sketchpad"):
                payloads = {n: editor_value(v) if isinstance(v, dict) else v for n, v in payloads.items()}
            where = f"event {dep['id']} ({dep.get('api_name')}) input {position} ({kind})"
            for name, value in payloads.items():
                sent = list(defaults)
                sent[position] = value
                probes.append(Probe(f"{where} = {name}", dep["id"], sent, leaks=names_a_picture(name), control=control))
            pairs.append((f"{where} = passwd", PASSWD, f"{where} = missing", MISSING))
            if kind in FILE_KINDS:
                pairs.append((f"{where} = fd-passwd", PASSWD, f"{where} = fd-missing", MISSING))
    assert len({p.fn_index for p in probes}) >= 25  # the private events too (one per function and inputs)
    print(f"{len(probes)} probes, {len({p.fn_index for p in probes})} events")
    problems, answers = run_probes(app.url, probes, slowdown, secrets, pictures_of(outside))
    problems += same_refusal(app.url, probes, answers, pairs)
    assert not problems, report(problems)


# -- 2. the message templates in each language ---------------------------------------------------------------

LANGUAGES = {"ko": ("ko-KR,ko;q=0.9", r"[\uac00-\ud7a3]"), "zh-CN": ("zh-CN,zh;q=0.9", r"[\u4e00-\u9fff]")}
# string parameters whose value a message may show
TEMPLATE_TARGETS = [
    ("/detect", "preprocessor"),
    ("/compose", "condition_1"),
    ("/canny", "scheduler"),
    ("/canny", "mode"),
    ("/canny", "prompt"),
    ("/pose", "pose_json"),
    ("/live", "preprocessor"),
    ("/compose", "pad_1"),
    ("/canny", "edited_map"),
    ("/scribble", "pad"),
]


def templates() -> list[str]:
    """The English templates of every message with values (the catalogs' keys with a {name})."""
    from controlnet_demo.ui.i18n import catalog

    keys = set(catalog("ko")) | set(catalog("zh-CN"))
    return sorted(k for k in keys if re.search(r"\{\w*\}", k))


def bait(template: str, length: int) -> str:
    """A value made of `template`'s own words (its values as "1"), repeated to `length` characters: what a
    translation that matched shown texts against the templates would backtrack on."""
    words = re.sub(r"\{[^{}]*\}", "1", template)
    return (words * (length // max(1, len(words)) + 1))[:length]


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_values_aimed_at_every_template_in_each_language(app, files, secrets, slowdown, language):
    header, script = LANGUAGES[language]
    headers = {"Accept-Language": header}
    bases = named_bases(app, files)
    every = templates()
    assert len(every) > 50
    params = {ep: [p["parameter_name"] for p in app.api["named_endpoints"][ep]["parameters"]] for ep in bases}
    probes = []
    for endpoint in {ep for ep, _ in TEMPLATE_TARGETS}:
        probes.append(
            Probe(
                f"{endpoint} (the working request)",
                app.fn_index(endpoint),
                bases[endpoint],
                headers=headers,
                must_succeed=True,
            )
        )

    def probe(label: str, endpoint: str, name: str, value: str) -> Probe:
        data = list(bases[endpoint])
        data[params[endpoint].index(name)] = value
        control = f"{endpoint} (the working request)"
        return Probe(
            f"{endpoint} {name} (text) = {label}", app.fn_index(endpoint), data, headers=headers, control=control
        )

    for k, template in enumerate(every):  # each template, ~1,200 characters, to one target in turn
        endpoint, name = TEMPLATE_TARGETS[k % len(TEMPLATE_TARGETS)]
        probes.append(probe(f"template {k}: {template[:40]!r}", endpoint, name, bait(template, 1_200)))
    everything = "".join(re.sub(r"\{[^{}]*\}", "1", t) for t in every)
    for endpoint, name in TEMPLATE_TARGETS:  # all the templates' words, 10,000 and 100,000 characters, to each
        for length in (10_000, 100_000):
            probes.append(
                probe(
                    f"all templates, {length:,} characters",
                    endpoint,
                    name,
                    (everything * (length // len(everything) + 1))[:length],
                )
            )
    problems, answers = run_probes(app.url, probes, slowdown, secrets, {})
    refusals = [a.text for a in answers.values() if not a.ok and a.text]
    # the control: the page's language was used (else the templates' translations were never reached)
    assert any(re.search(script, text) for text in refusals), refusals[:3]
    assert not problems, report(problems)


# -- 3. bombs through every file input ---------------------------------------------------------------------------


def npz_bomb(declared: tuple[int, int] = (50_000, 50_000), zeros: int = 1 << 30) -> bytes:
    """A NumPy .npz (a zip) of about 1 MB whose one array declares `declared` float64 (20 GB) and inflates to
    `zeros` bytes (1 GiB) of zeros: what np.load would allocate and fill."""
    header = repr({"descr": "<f8", "fortran_order": False, "shape": declared}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    npy_head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # a zip member's raw deflate stream
    packed, crc = [compressor.compress(npy_head)], zlib.crc32(npy_head)
    block = bytes(1 << 20)
    for _ in range(zeros // len(block)):
        packed.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    packed.append(compressor.flush())
    body = b"".join(packed)
    size = len(npy_head) + zeros
    name = b"arr_0.npy"  # written by hand: zipfile would deflate the whole GiB again
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 33, crc, len(body), size, len(name), 0) + name
    central = (
        struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 33, crc, len(body), size, len(name), 0, 0, 0, 0, 0, 0
        )
        + name
    )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(body), 0)
    return local + body + central + end


@pytest.fixture(scope="module")
def bombs(files) -> dict[str, bytes]:
    bomb = npz_bomb()
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:  # a valid zip, as np.load opens it
        assert z.namelist() == ["arr_0.npy"] and z.getinfo("arr_0.npy").file_size > 2**30
    assert len(bomb) < 2 * 2**20
    return {"maps.npz": bomb, "bomb.png": (files / "bomb.png").read_bytes()}


class PeakMemory:
    """The peak resident memory of this process (the server's) while the block runs, sampled every 5 ms: the
    growth over what it was before, in MB; and getrusage's peak (ru_maxrss) growth."""

    def __init__(self):
        import psutil

        self.process = psutil.Process()

    def __enter__(self):
        self.before = self.peak = self.process.memory_info().rss
        self.max_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.grown_mb = (self.peak - self.before) / 2**20
        self.max_grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.max_before) / 2**20


def bomb_probes(app: App, bases: dict[str, list], uploaded: dict[str, dict], inline: str) -> list[Probe]:
    """Each uploaded file (FileData) into every file input of every named endpoint (its other values working: the
    file is read) and of every event of the page (its other values the defaults); `inline` (a data: URL) into every
    text input of the named endpoints that holds a drawing, a pose or a map."""
    components = app.components()
    probes = []
    for endpoint, data in bases.items():
        fn = app.fn_index(endpoint)
        control = f"{endpoint} (the working request)"
        probes.append(Probe(control, fn, data, must_succeed=True))
        inputs = app.dependency(fn)["inputs"]
        for position, (param, component) in enumerate(zip(app.api["named_endpoints"][endpoint]["parameters"], inputs)):
            kind, type_ = kind_of_parameter(param), components[component]["type"]
            values = {}
            if kind in ("file", "editor"):
                values = {name: editor_value(fd) if kind == "editor" else fd for name, fd in uploaded.items()}
            elif kind == "text" and type_ in ("html", "textbox") and param["parameter_name"] not in PROSE:
                values = {"inline bomb.png": inline}
            for name, value in values.items():
                sent = list(data)
                sent[position] = value
                label = f"{endpoint} {param['parameter_name']} ({kind}) = {name}"
                probes.append(Probe(label, fn, sent, control=control))
    for dep in app.config["dependencies"]:
        if not dep.get("backend_fn"):
            continue
        defaults = [components[i].get("props", {}).get("value") for i in dep["inputs"]]
        for position, i in enumerate(dep["inputs"]):
            kind = components[i]["type"]
            if kind not in FILE_KINDS:
                continue
            for name, fd in uploaded.items():
                sent = list(defaults)
                sent[position] = editor_value(fd) if kind in ("imageeditor", "sketchpad") else fd
                label = f"event {dep['id']} ({dep.get('api_name')}) input {position} ({kind}) = {name}"
                probes.append(Probe(label, dep["id"], sent))
    return probes


def test_bombs_through_every_file_input_of_every_event(app, files, bombs, secrets, slowdown):
    """One at a time (so that each one's cost in memory is its own), from this process: the server's resident
    memory grows by less than MEMORY_MB during each, and during them all."""
    bases = named_bases(app, files)
    warm_up(app, bases)
    uploaded = {name: upload(app.url, name, content) for name, content in bombs.items()}
    inline = "data:image/png;base64," + base64.b64encode(bombs["bomb.png"]).decode()
    probes = bomb_probes(app, bases, uploaded, inline)
    assert len(probes) > 60
    with PeakMemory() as memory:
        problems, _ = run_probes(app.url, probes, slowdown, secrets, {}, memory_mb=MEMORY_MB)
    print(f"resident memory: +{memory.grown_mb:.0f} MB at its peak (ru_maxrss +{memory.max_grown_mb:.0f} MB)")
    problems += [f"all the bombs: the server's resident memory grew {memory.grown_mb:.0f} MB"] * (
        max(memory.grown_mb, memory.max_grown_mb) >= MEMORY_MB
    )
    with PeakMemory() as control:  # the meter sees an allocation of that size
        hog = np.ones((MEMORY_MB + 100) * 2**20, np.uint8)
        time.sleep(0.05)
        del hog
    assert control.grown_mb > MEMORY_MB, control.grown_mb
    assert not problems, report(problems)


SESSIONS_MB = 1024  # what a flood of new sessions may make the server hold


def test_a_flood_of_new_sessions_holds_bounded_memory(app, files):
    """A client picks its own session_hash, and gradio keeps a SessionState for each one it sees (with a copy of
    every component's config) until `state_session_capacity` newer ones push it out: what a visitor sending cheap
    refused requests under new session ids can make the server hold must stay bounded."""
    import gc

    bases = named_bases(app, files)
    fn = app.fn_index("/canny")
    scheduler = [p["parameter_name"] for p in app.api["named_endpoints"]["/canny"]["parameters"]].index("scheduler")
    refused = list(bases["/canny"])
    refused[scheduler] = "no such scheduler"  # refused in words at once: no model runs
    meter = PeakMemory()
    with httpx.Client(timeout=60) as http:
        assert not ask(app.url, fn, refused, http=http).ok
        gc.collect()
        before = meter.process.memory_info().rss
        n = 200
        for _ in range(n):
            answer = ask(app.url, fn, refused, http=http)  # a new session each
            assert not answer.ok and in_words(answer.text), answer.shown()
        gc.collect()
        per_session_mb = (meter.process.memory_info().rss - before) / 2**20 / n
    capacity = app.blocks.state_session_capacity
    held = capacity * per_session_mb
    print(f"{per_session_mb:.2f} MB kept per new session, {capacity} sessions kept: {held:.0f} MB")
    assert held < SESSIONS_MB, (
        f"each new session keeps {per_session_mb:.2f} MB and gradio keeps {capacity} of them: a client inventing "
        f"session ids can make the server hold {held:.0f} MB (state_session_capacity in launch, or a lighter session)"
    )


# -- 4. the map cache --------------------------------------------------------------------------------------------


def test_the_map_cache_stays_under_its_limit(files, tmp_path, slowdown):
    from gradio_client import Client, handle_file

    side = 768  # a canny map of side x side at that preprocess resolution: 1.7 MB (under a quarter of 8 MB: kept)
    url, service, blocks = serve(public_settings(map_cache_mb=8))
    try:
        client = Client(url, verbose=False)
        rng = np.random.default_rng(7)
        for k in range(50):
            path = tmp_path / f"noise_{k}.png"
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path, compress_level=1)
            values = request("/canny", files, steps=1, preprocessor="canny", preprocess_resolution=side, seed=k)
            client.predict(api_name="/canny", **{**values, "image": handle_file(str(path))})
            path.unlink()
        maps = service.maps
        assert len(maps) >= 2, "the cache kept nothing: the test tests nothing"  # the control
        assert maps.nbytes <= maps.max_bytes, (maps.nbytes, maps.max_bytes)
        # and its count is honest: each kept map is at least side x side bytes
        assert len(maps) * side * side <= maps.max_bytes, (len(maps), maps.max_bytes)
    finally:
        blocks.close()


# -- 5. a second visitor while a first floods --------------------------------------------------------------------


class Flooder:
    """One visitor (one address, behind the proxy) that keeps as many generations queued as the server lets it:
    it joins again whenever it is refused, until told to stop, and reads its answers on one session's stream."""

    def __init__(self, url: str, fn: int, data: list, address: str):
        self.url, self.fn, self.data = url, fn, data
        self.headers = {"X-Forwarded-For": address}
        self.session = uuid.uuid4().hex
        self.accepted = self.completed = 0
        self.refusals: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.http = httpx.Client(base_url=f"{url}/gradio_api", timeout=60, headers=self.headers)

    def join(self) -> bool:
        body = body_of(self.data, self.fn, self.session)
        reply = self.http.post("/queue/join", content=body, headers={"content-type": "application/json"})
        if reply.status_code == 200:
            self.accepted += 1
            return True
        self.refusals.append((reply.status_code, _detail(reply)))
        return False

    def outstanding(self) -> int:
        return self.accepted - self.completed

    def keep_flooding(self) -> None:
        while not self.stop.is_set():
            self.join()
            time.sleep(0.05)

    def read(self) -> None:
        while not (self.stop.is_set() and self.outstanding() == 0):
            with httpx.Client(base_url=f"{self.url}/gradio_api", timeout=60) as http:
                with http.stream("GET", "/queue/data", params={"session_hash": self.session}) as stream:
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            message = json.loads(line[5:])
                            if message.get("msg") == "process_completed":
                                self.completed += 1
                                if not message.get("success"):
                                    self.failures.append(str(message.get("output"))[:300])
            time.sleep(0.05)


def test_a_second_visitor_is_served_while_a_first_floods(files):
    settings = public_settings(jobs_per_client=3, queue_size=16, behind_proxy=True)
    url, service, blocks = serve(settings)
    try:
        app = describe(url, service, blocks)
        fn = app.fn_index("/canny")
        with httpx.Client(base_url=f"{url}/gradio_api", timeout=60) as http:
            data = raw_data(http, app.api, "/canny", request("/canny", files, steps=6, seed=1))
        assert ask(url, fn, data).ok  # the models loaded
        with counting_steps(service, pause_s=0.1) as steps:  # each job holds the worker ~0.6 s and more
            flooder = Flooder(url, fn, data, "10.0.0.1")
            reader = threading.Thread(target=flooder.read)
            joined = [flooder.join() for _ in range(20)]  # 20 at once
            reader.start()
            assert joined.count(True) == 3, joined  # its cap
            refused = [detail for status, detail in flooder.refusals if status == 503]
            assert len(refused) == 17 and all("already have" in d and in_words(d) for d in refused), flooder.refusals[
                :2
            ]
            flooding = threading.Thread(target=flooder.keep_flooding)
            flooding.start()
            before = len(steps)
            second = ask(url, fn, data, headers={"X-Forwarded-For": "10.0.0.2"})
            ran = len(steps) - before  # the steps of every job done while the second visitor waited, and its own
            still = flooder.outstanding()
            flooder.stop.set()
            flooding.join()
            reader.join(timeout=120)
        assert second.ok, second.shown()
        assert still > 0, "the first visitor's jobs were all done: the test saw no flood"
        # at most the first visitor's cap of jobs ahead of it (and one that slipped in as it joined), then its own;
        # without the cap, the 20 it sent at once
        assert ran <= (3 + 1 + 1) * 6, ran
        assert not flooder.failures, flooder.failures[:2]
        assert flooder.completed == flooder.accepted
    finally:
        blocks.close()


def test_no_event_runs_around_the_queue(app):
    """gradio's direct POST routes (open by default off a Space) would run any event, a private one too, without the
    queue, its limits or the per-client cap: closed."""
    private = next(
        d["id"] for d in app.config["dependencies"] if d.get("backend_fn") and d.get("api_visibility") == "private"
    )
    with httpx.Client(base_url=f"{app.url}/gradio_api", timeout=30) as http:
        for fn_index in (app.fn_index("/canny"), private):
            reply = http.post("/run/predict", json={"data": [], "fn_index": fn_index, "session_hash": "direct"})
            assert reply.status_code == 404 and "join the queue" in reply.text, (fn_index, reply.text[:200])


def test_a_flood_of_light_events_does_not_fill_the_queue(app):
    """The page's light events (the page's texts, a dropdown's choices) count no job, but one client keeps at most a
    few of them waiting: a flood is refused at the door, in words, and the queue keeps room for others (each event
    held 0.5 s here, so that they pile up)."""
    import functools
    import inspect

    light = next(
        d["id"] for d in app.config["dependencies"] if d.get("backend_fn") and not d["inputs"] and d.get("queue")
    )
    fn = app.blocks.fns[light]
    assert fn.concurrency_id == "ui"
    quick = fn.fn

    @functools.wraps(quick)
    def slow(*args, **kwargs):
        time.sleep(0.5)
        return quick(*args, **kwargs)

    slow.__signature__ = inspect.signature(quick)
    fn.fn = slow
    try:
        with httpx.Client(base_url=f"{app.url}/gradio_api", timeout=30) as http:
            body = {"data": [], "fn_index": light, "event_data": None}
            replies = [http.post("/queue/join", json={**body, "session_hash": f"flood{k}"}) for k in range(40)]
            waiting = len(app.blocks._queue)
    finally:
        fn.fn = quick
    refused = [r for r in replies if r.status_code != 200]
    assert refused, [r.status_code for r in replies]
    # refused by the per-client door, before gradio's queue was full (its refusal reads "Queue is full")
    assert all(r.status_code == 503 and "already have" in r.text for r in refused), refused[0].text[:200]
    assert waiting <= 4


# -- 6. the request body limit -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["with its length", "streamed, no length"])
def test_a_body_over_the_limit_is_refused_before_it_is_read(app, files, slowdown, sent):
    """40 MB to queue/join (the limit: 32 MB): refused with 413 in words, at once; by its Content-Length, or
    while it streams in (chunked, no length)."""
    assert app.service.settings.max_request_mb == 32
    big = b'{"data": ["' + b"x" * (40 * 2**20) + b'"], "fn_index": 4, "session_hash": "abc"}'

    def chunks():
        for k in range(0, len(big), 2**20):
            yield big[k : k + 2**20]

    began = time.monotonic()
    reply = httpx.post(
        f"{app.url}/gradio_api/queue/join",
        content=big if sent == "with its length" else chunks(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    took = time.monotonic() - began
    assert reply.status_code == 413, (reply.status_code, reply.text[:300])
    assert in_words(reply.text) and "limit" in reply.text, reply.text[:300]
    assert took < HOLD_S * slowdown, took
    bases = named_bases(app, files)  # and it keeps serving
    answer = ask(app.url, app.fn_index("/canny"), bases["/canny"])
    assert answer.ok, answer.shown()


# -- 7. the public defaults --------------------------------------------------------------------------------------


def test_public_mode_is_the_default_beyond_this_machine():
    beyond = Settings.from_env({"CONTROLNET_DEMO_SERVER_NAME": "0.0.0.0"})
    assert beyond.public and not beyond.mcp and not beyond.training
    assert beyond.rate_limit_per_minute > 0 and beyond.jobs_per_client > 0
    assert not Settings.from_env({}).public
    space = Settings.from_env({"SPACE_ID": "someone/controlnet"})
    assert space.public and space.behind_proxy and not space.mcp and not space.training
    assert space.rate_limit_per_minute > 0 and space.jobs_per_client > 0
    assert not Settings.from_env({"CONTROLNET_DEMO_SERVER_NAME": "0.0.0.0", "CONTROLNET_DEMO_PUBLIC": "0"}).public
    local = Settings.from_env({})
    assert not local.behind_proxy  # X-Forwarded-For is the client's own word unless a proxy is known to add it
    shared = Settings.from_env({"GRADIO_SHARE": "1"})  # a share link reaches this machine from anywhere
    assert shared.public and shared.sessions < local.sessions
