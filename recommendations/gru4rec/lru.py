"""A small thread-safe map that drops its least recently used entry when full: the engine's
per-session GRU states (:meth:`GRU4Rec._hidden_one_cpu`) and the shop's per-model answers
(``recommendations.caches.AnswerCache``)."""
from __future__ import annotations

import threading
from collections import OrderedDict


class LRU:
    """``key -> value`` for at most ``size`` entries (0 keeps nothing); ``hits`` / ``misses``
    count the lookups. Values are shared, not copied: store only what nobody mutates."""

    def __init__(self, size: int):
        self.size = max(0, int(size))
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        if not self.size:
            return None
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value) -> None:
        if not self.size:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
