"""What protects the server's time: a cache of detected control maps, a per-client rate limit, and the order in which
work gets the engines (full-quality jobs, then live frames, then background work: `Priority`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict

from ..errors import UserInputError


class MapCache:
    """Detected control maps by (image content, preprocessor, settings): re-running a prompt skips detection. Bounded
    in bytes (`max_bytes`, the least recently used go first); a map larger than a quarter of that is not kept."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes, self.nbytes = max_bytes, 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        size = getattr(value, "nbytes", 0)
        if size > self.max_bytes // 4:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self.nbytes += size
            while self.nbytes > self.max_bytes:
                self.nbytes -= getattr(self._items.popitem(last=False)[1], "nbytes", 0)
        return value

    def __len__(self) -> int:
        return len(self._items)


class RateLimiter:
    """At most `per_minute` generations per client in any 60 s window; 0 turns it off (public hosting option)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, cost: int = 1) -> None:
        """Count `cost` generations for `client` (a comparison is several), or refuse them in words."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if now - t < 60.0]
            if recent and len(recent) + cost > max(self.per_minute, cost):
                # the oldest of those that must leave the window before `cost` more fit in it
                wait = 60.0 - (now - recent[min(len(recent) - 1, max(0, len(recent) + cost - self.per_minute - 1))])
                raise UserInputError(
                    "Too many requests: this server allows {n} a minute per user. Try again in {s} s.",
                    n=self.per_minute,
                    s=max(1, round(wait)),
                )
            self._seen[client] = [*recent, *[now] * cost]
            if len(self._seen) > 10_000:  # many clients: forget the ones with nothing in the last minute
                self._seen = {c: ts for c, ts in self._seen.items() if ts and now - ts[-1] < 60.0}


class Priority:
    """Full-quality jobs before live frames, and both before background work (the app's training panel): a frame
    starts only when fewer full jobs are waiting or running than there are engines (`engines`); a piece of
    background work (one training step) only when no job or frame waits or runs, and a job that arrives meanwhile
    waits for that one piece alone."""

    def __init__(self, engines: int = 1):
        self._cond = threading.Condition()
        self._full = 0  # full jobs waiting for or holding an engine
        self._live = 0  # live frames waiting for or holding their turn
        self._background = False  # a piece of background work is running
        self.engines = engines

    def full(self):
        return self._enter("_full", lambda: not self._background)

    def live(self):
        return self._enter("_live", lambda: self._full < self.engines and not self._background)

    @contextlib.contextmanager
    def background(self, timeout: float | None = None):
        """Background work's turn; with `timeout`, TimeoutError when it did not come within that many seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: not (self._full or self._live or self._background), timeout):
                raise TimeoutError("no turn for background work")
            self._background = True
        try:
            yield
        finally:
            with self._cond:
                self._background = False
                self._cond.notify_all()

    @contextlib.contextmanager
    def _enter(self, counter: str, ready):
        """Counted in `counter` while waiting for `ready()` and while running."""
        with self._cond:
            setattr(self, counter, getattr(self, counter) + 1)
            self._cond.wait_for(ready)
        try:
            yield
        finally:
            with self._cond:
                setattr(self, counter, getattr(self, counter) - 1)
                self._cond.notify_all()

    @property
    def full_jobs(self) -> int:
        return self._full
