"""What protects the server's time: a cache of detected control maps, and a per-client rate limit."""

from __future__ import annotations

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
