"""What protects the server's time: a cache of detected control maps, and a per-client rate limit."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ..errors import UserInputError


class MapCache:
    """Detected control maps by (image content, preprocessor, settings): re-running a prompt skips detection."""

    def __init__(self, size: int = 32):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get_or_make(self, key, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class RateLimiter:
    """At most `per_minute` generations per client in any 60 s window; 0 turns it off (public hosting option)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if now - t < 60.0]
            if len(recent) >= self.per_minute:
                wait = 60.0 - (now - recent[0])
                raise UserInputError(
                    f"Too many requests: this server allows {self.per_minute} a minute per user. "
                    f"Try again in {max(1, round(wait))} s."
                )
            self._seen[client] = [*recent, now]
