"""Live frames: what the live canvas asks for at every stroke, kept from piling up and from delaying real jobs.

A client has at most one frame waiting: a newer one takes its place and the replaced caller gets None at once (its
picture is out of date before it is made). One frame runs at a time, clients in turn, and never while a
full-quality job waits or runs: such a job waits for at most the one frame already on the engine.
"""

from __future__ import annotations

import atexit
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future


class LastFrames:
    """The page's live frames are checked only when the drawing pauses: each client's last unchecked frame is kept
    (at most `size` clients, the oldest let go), with the number it was asked for under (one count for all);
    `after_pause` hands it over once no newer frame was asked for within the pause."""

    def __init__(self, size: int = 16):
        self.size = size
        self._cond = threading.Condition()
        self._count = itertools.count(1)
        self._asked: OrderedDict[str, int] = OrderedDict()  # client -> the number of its latest frame
        self._frames: OrderedDict[str, tuple[int, object]] = OrderedDict()

    def asked(self, client: str) -> int:
        """A new frame of `client` was asked for; its number."""
        with self._cond:
            number = next(self._count)
            self._asked.pop(client, None)
            self._asked[client] = number
            while len(self._asked) > self.size:
                self._asked.popitem(last=False)
            self._cond.notify_all()
            return number

    def latest(self, client: str, number: int) -> bool:
        """Whether frame `number` is still `client`'s latest."""
        with self._cond:
            return self._asked.get(client) == number

    def keep(self, client: str, number: int, frame) -> None:
        with self._cond:
            self._frames.pop(client, None)
            self._frames[client] = (number, frame)
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)

    def after_pause(self, client: str, pause_s: float):
        """`client`'s last frame once `pause_s` passed with no newer frame asked for (and it is let go); None when
        a newer one was asked for meanwhile, or there is none."""
        with self._cond:
            kept = self._frames.get(client)
            if kept is None:
                return None
            number, frame = kept
            if self._cond.wait_for(lambda: self._asked.get(client) != number, timeout=pause_s):
                return None  # the drawing goes on: its newer frame is checked when it pauses
            if self._frames.get(client) is not kept:  # another caller took it meanwhile
                return None
            self._frames.pop(client)
            return number, frame


class LiveLane:
    """One waiting frame per client, run one at a time in arrival order of the clients, by `run(job)`; at most
    `max_waiting` frames wait in all (the oldest goes first: a flood of new clients cannot build a backlog)."""

    def __init__(self, run: Callable[[object], object], max_waiting: int = 16):
        self._run = run
        self.max_waiting = max_waiting
        self._lock = threading.Condition()
        self._waiting: OrderedDict[str, tuple[object, Future]] = OrderedDict()
        self._running: str | None = None
        self._worker: threading.Thread | None = None
        self.superseded = 0  # frames replaced before they ran (for the benchmark and the load test)
        self.ran = 0
        self._closed = False

    def submit(self, client: str, job) -> Future:
        """Queue `job` as `client`'s frame; the future gets run(job)'s result, its exception, or None when a newer
        frame of the same client replaced it before it ran."""
        future: Future = Future()
        with self._lock:
            if self._closed:  # shutting down: nothing more runs
                future.set_result(None)
                return future
            old = self._waiting.get(client)
            if old is not None:  # keeps its place in line, with the newer content
                old[1].set_result(None)
                self.superseded += 1
            self._waiting[client] = (job, future)
            while len(self._waiting) > self.max_waiting:
                self._waiting.popitem(last=False)[1][1].set_result(None)
                self.superseded += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="live-lane", daemon=True)
                self._worker.start()
                atexit.register(self.close)
            self._lock.notify_all()
        return future

    @property
    def running(self) -> str | None:
        """The client whose frame is on the engine now."""
        return self._running

    def pending(self) -> dict[str, int]:
        """client -> frames waiting (0 or 1) and running (0 or 1): what the load test checks."""
        with self._lock:
            counts = {c: 1 for c in self._waiting}
            if self._running is not None:
                counts[self._running] = counts.get(self._running, 0) + 1
            return counts

    def close(self, timeout_s: float = 60.0) -> None:
        """Answer the waiting frames with None and let the running one finish: a frame cut off inside torch at
        interpreter exit aborts the process. Run at exit; the lane takes no frames after it."""
        with self._lock:
            self._closed = True
            for _, future in self._waiting.values():
                future.set_result(None)
            self._waiting.clear()
            self._lock.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout_s)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._waiting) or self._closed)
                if self._closed:
                    return
                client, (job, future) = self._waiting.popitem(last=False)
                self._running = client
            result, error = None, None
            if future.set_running_or_notify_cancel():
                try:
                    result = self._run(job)
                except BaseException as exc:  # the caller's to report; the lane goes on
                    error = exc
            with self._lock:  # done before the caller hears of it: its next frame finds the lane free
                self._running = None
                self.ran += 1
            if error is not None:
                future.set_exception(error)
            elif future.running():
                future.set_result(result)
