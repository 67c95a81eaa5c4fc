"""Hybrid logical clock whose stamps sort lexicographically.

Stamp format ``<wall ms, 13 digits>.<logical, 6 digits>.<node id>``: comparing two stamps as
strings compares wall time, then the logical counter, then the node id, which is the
deterministic tie-break for last-writer-wins.
"""

from __future__ import annotations

import threading
import time


def format_stamp(wall_ms: int, logical: int, node_id: str) -> str:
    return f"{wall_ms:013d}.{logical:06d}.{node_id}"


def parse_stamp(stamp: str) -> tuple[int, int, str]:
    wall, logical, node_id = stamp.split(".", 2)
    return int(wall), int(logical), node_id


class HybridLogicalClock:
    """HLC per node; ``skew_s`` lets the nemesis move the node's wall clock."""

    def __init__(self, node_id: str, last_stamp: str | None = None) -> None:
        self.node_id = node_id
        self.skew_s = 0.0
        self._wall = 0
        self._logical = 0
        self._lock = threading.Lock()
        if last_stamp:
            self.observe(last_stamp)

    def _physical_ms(self) -> int:
        return int((time.time() + self.skew_s) * 1000)

    def tick(self) -> str:
        """Stamp a local event."""
        with self._lock:
            physical = self._physical_ms()
            if physical > self._wall:
                self._wall, self._logical = physical, 0
            else:
                self._logical += 1
            return format_stamp(self._wall, self._logical, self.node_id)

    def observe(self, stamp: str) -> None:
        """Merge a remote stamp so later local stamps sort after it."""
        wall, logical, _ = parse_stamp(stamp)
        with self._lock:
            if wall > self._wall or (wall == self._wall and logical > self._logical):
                self._wall, self._logical = wall, logical
