"""The resets other processes ran on a shared fleet, brought into this process's history.

Under pabot the fleet gate runs one process per roster node against ONE fleet
(``shared_fleet.py``). Each process's history holds what *it* observed and did. A reset another
process ran meanwhile (a full resync, a restart, a crash, a reactivation: the invariants'
``RESET_OPERATIONS``) is not in it, so a row this process saw ``active`` and later ``syncing``
would break "membership moves forward" with no license: a verdict blaming the process that only
looked. The readers-writer hold keeps another process's resets away from this process's checks
while they run, not out of its history: an exclusive holder whose check failed releases the
fleet mid-reset, and the rows this process reads next are still moving.

So a process publishes, when it releases its hold, the resets it ran while holding the fleet;
every other process, when it next holds the fleet, adds them to its own history as operations
(``invoke`` then ``ok``) whose value names the process that ran them (``by``, ``suite``, its
``wall`` time). They license those nodes' rows exactly as its own resets would, from the hold on
to the end of the test that took it; nothing else in the history changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tribesqa.history.invariants import RESET_OPERATIONS
from tribesqa.history.recorder import HistoryRecorder
from tribesqa.shared_fleet import ParallelStore


def resets_since(records: Iterable[Mapping[str, Any]], after_seq: int) -> list[dict[str, Any]]:
    """This process's own reset operations recorded after ``after_seq`` (imported ones excluded:
    each process publishes only what it ran)."""
    return [
        {"node": record["node"], "what": record["what"], "wall": record.get("wall")}
        for record in records
        if record.get("seq", 0) > after_seq
        and record.get("type") == "invoke"
        and record.get("what") in RESET_OPERATIONS
        and record.get("node") is not None
        and not _imported(record)
    ]


def _imported(record: Mapping[str, Any]) -> bool:
    value = record.get("value")
    return isinstance(value, Mapping) and "by" in value


class SharedResets:
    """One process's view of the resets every process sharing the fleet published.

    ``name`` is the shared fleet's (the hold's), ``holder`` this process (as the hold names it)
    and ``suite`` its suite label (``Fleet Gate@2``), shown to the reader of the history.
    """

    def __init__(self, store: ParallelStore, name: str, holder: str, suite: str) -> None:
        self.store = store
        self.name = name
        self.key = f"{name}.resets"
        self.mutex = f"{name}.resets.mutex"
        self.holder = holder
        self.suite = suite
        self.seen = 0
        """How many of the published entries this process has taken in (its own included)."""
        self.mark = 0
        """The last seq of this process's history when it took its hold."""

    def on_hold(self, history: HistoryRecorder) -> int:
        """Just after taking the hold: record the resets the others ran meanwhile (how many)."""
        imported = self.import_into(history)
        self.mark = _last_seq(history)
        return imported

    def on_release(self, history: HistoryRecorder) -> None:
        """Just before giving the hold back: publish the resets this process ran under it."""
        self.publish(resets_since(history.records(), self.mark))

    def _entries(self) -> list[dict[str, Any]]:
        raw = self.store.get_parallel_value_for_key(self.key)
        return list(json.loads(raw)) if raw else []

    def publish(self, resets: list[dict[str, Any]]) -> None:
        """Append this process's ``resets`` (from ``resets_since``) to the fleet's list."""
        if not resets:
            return
        stamped = [{**reset, "by": self.holder, "suite": self.suite} for reset in resets]
        self.store.acquire_lock(self.mutex)
        try:
            entries = self._entries() + stamped
            self.store.set_parallel_value_for_key(self.key, json.dumps(entries))
        finally:
            self.store.release_lock(self.mutex)

    def take_new(self) -> list[dict[str, Any]]:
        """The entries other processes published since the last call (own ones skipped)."""
        entries = self._entries()
        fresh, self.seen = entries[self.seen :], len(entries)
        return [entry for entry in fresh if entry.get("by") != self.holder]

    def import_into(self, history: HistoryRecorder) -> int:
        """Record the other processes' new resets in ``history``; return how many."""
        fresh = self.take_new()
        for entry in fresh:
            node, what = str(entry["node"]), str(entry["what"])
            ran = {"by": entry.get("by"), "suite": entry.get("suite"), "wall": entry.get("wall")}
            op = history.invoke(node, what, ran)
            history.complete(op, node, what, {"imported": True})
        return len(fresh)


def _last_seq(history: HistoryRecorder) -> int:
    return max((int(record.get("seq", 0)) for record in history.records()), default=0)
