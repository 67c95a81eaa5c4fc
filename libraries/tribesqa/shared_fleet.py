"""One fleet shared by several robot processes (the per-node fleet gate under pabot).

A *handle* (JSON text, passed between processes with PabotLib's ``Set/Get Parallel Value For
Key``) says how to attach to the fleet the first process opened: for the simulator its fleet
directory and Legion URL, for the real strategy its filled template values; plus the nodes the
opener provisioned, which the process that closes the fleet destroys.

``SharedFleetGuard`` keeps the processes' checks from interfering: a readers-writer lock kept in
PabotLib (``Acquire Lock`` guards a small JSON state under a parallel value). Read-only checks
hold it *shared* and run side by side; destructive checks (restart, partition, full resync)
hold it *exclusive*: they wait for every shared holder to finish and keep everyone else out
until the cluster has converged again. Waiting writers go first, in arrival order. Under plain
robot (no pabot) PabotLib runs in-process and every hold is granted at once.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class HoldMode(StrEnum):
    """How a process holds the shared fleet: side by side (``shared``) or alone (``exclusive``)."""

    SHARED = "shared"
    EXCLUSIVE = "exclusive"


SHARED = HoldMode.SHARED.value
EXCLUSIVE = HoldMode.EXCLUSIVE.value


class ParallelStore(Protocol):
    """The part of PabotLib the guard uses (``pabot.PabotLib`` is one)."""

    def acquire_lock(self, name: str) -> Any: ...

    def release_lock(self, name: str) -> Any: ...

    def get_parallel_value_for_key(self, key: str) -> Any: ...

    def set_parallel_value_for_key(self, key: str, value: Any) -> Any: ...


class LocalStore:
    """In-process stand-in for PabotLib (one process: no contention)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def acquire_lock(self, name: str) -> bool:
        return True

    def release_lock(self, name: str) -> None:
        return None

    def get_parallel_value_for_key(self, key: str) -> Any:
        return self.values.get(key, "")

    def set_parallel_value_for_key(self, key: str, value: Any) -> None:
        self.values[key] = value


@dataclass
class SharedHandle:
    id: str
    kind: str
    target: dict[str, Any]
    provisioned: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, kind: str, target: dict[str, Any], provisioned: list[str]) -> SharedHandle:
        return cls(secrets.token_hex(6), kind, target, list(provisioned))

    def dumps(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "kind": self.kind,
                "target": self.target,
                "provisioned": self.provisioned,
            },
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str) -> SharedHandle:
        try:
            data = json.loads(text)
            return cls(
                str(data["id"]), str(data["kind"]), dict(data["target"]), list(data["provisioned"])
            )
        except (ValueError, KeyError, TypeError):
            raise AssertionError(f"not a shared target handle: {text!r:.200}") from None


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SharedFleetGuard:
    """Readers-writer lock over a ParallelStore (see the module docstring)."""

    def __init__(
        self,
        store: ParallelStore,
        name: str,
        *,
        holder: str | None = None,
        poll_s: float = 0.2,
        wait_s: float = 600.0,
    ) -> None:
        self.store = store
        self.mutex = f"{name}.mutex"
        self.key = f"{name}.state"
        self.holder = holder or holder_id()
        self.poll_s = poll_s
        self.wait_s = wait_s
        self.mode: str | None = None

    def _update(self, change: Any) -> Any:
        """Run ``change(state)`` under the mutex; it returns (new state or None, result)."""
        self.store.acquire_lock(self.mutex)
        try:
            raw = self.store.get_parallel_value_for_key(self.key)
            state = json.loads(raw) if raw else {"readers": [], "writer": "", "waiting": []}
            new_state, result = change(state)
            if new_state is not None:
                self.store.set_parallel_value_for_key(self.key, json.dumps(new_state))
            return result
        finally:
            self.store.release_lock(self.mutex)

    def state(self) -> dict[str, Any]:
        return self._update(lambda state: (None, state))

    def hold(self, mode: str) -> float:
        """Block until held in ``mode``; return the seconds waited. Fails after ``wait_s``."""
        if mode not in (SHARED, EXCLUSIVE):
            raise AssertionError(f"hold mode must be {SHARED} or {EXCLUSIVE}, got {mode!r}")
        if self.mode is not None:
            raise AssertionError(f"this process already holds the shared fleet ({self.mode})")
        me = self.holder
        started = time.monotonic()
        if mode == EXCLUSIVE:
            self._update(lambda s: ({**s, "waiting": [*s["waiting"], me]}, None))

        def try_take(state: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
            if mode == SHARED:
                if state["writer"] or state["waiting"]:
                    return None, False
                return {**state, "readers": [*state["readers"], me]}, True
            if state["writer"] or state["readers"] or state["waiting"][:1] != [me]:
                return None, False
            return {**state, "writer": me, "waiting": state["waiting"][1:]}, True

        while not self._update(try_take):
            if time.monotonic() - started > self.wait_s:
                if mode == EXCLUSIVE:
                    self._update(
                        lambda s: ({**s, "waiting": [w for w in s["waiting"] if w != me]}, None)
                    )
                state = self.state()
                raise AssertionError(
                    f"waited {self.wait_s:g} s for a {mode} hold on the shared fleet: "
                    f"exclusive holder {state['writer'] or 'none'}, "
                    f"shared holders {', '.join(state['readers']) or 'none'}, "
                    f"waiting {', '.join(state['waiting']) or 'none'}"
                )
            time.sleep(self.poll_s)
        self.mode = mode
        return time.monotonic() - started

    def release(self) -> str | None:
        """Give the hold back (no-op when nothing is held); return the mode released."""
        mode, self.mode = self.mode, None
        if mode is None:
            return None
        me = self.holder

        def drop(state: dict[str, Any]) -> tuple[dict[str, Any], None]:
            readers = list(state["readers"])
            if me in readers:
                readers.remove(me)
            writer = "" if state["writer"] == me else state["writer"]
            return {**state, "readers": readers, "writer": writer}, None

        self._update(drop)
        return mode
