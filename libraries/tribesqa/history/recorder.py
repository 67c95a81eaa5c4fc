"""The run history (issue 14): every observation and operation of a suite, one JSON line each.

``results/artifacts/<suite>/history.jsonl`` (the suite's artifact directory), one object per line:
``seq`` (per suite, from 1), ``type`` (observation | invoke | ok | fail | info), ``test``
(full test name or null in suite setup/teardown), ``node``, ``what`` (``cluster_nodes.list``,
``legion.decommission``, ``fault.partition``, ``probe.node.info``, ``healthz``, ``history.check``, ...),
``op`` (links invoke to ok/fail), ``mono``
(the runner's ``time.monotonic()``), ``wall`` (RFC 3339 UTC), ``digest`` (first 16 hex of the
sha256 of the canonical JSON value) and ``value`` (compact JSON).

Appending is thread-safe and cheap (the wait engine probes from a thread pool): records are
buffered and written, secrets scrubbed, when a test or suite ends. ``TRIBES_QA_HISTORY=0``
switches the history off (the bench measures its cost that way).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.jsonl"
ENV_SWITCH = "TRIBES_QA_HISTORY"

# Management methods that change a node; every other method is a read (an observation).
OPERATION_METHODS = frozenset(
    {
        "sync.resync",
        "rollout.start",
        "generation.rollback",
        "control.apply_membership",
        "control.init_tribe",
    }
)
_MEMBER_FIELDS = ("status", "activated_at", "decommissioned_at", "transport_address")
# A hand-made management request is recorded as ``probe.<method>`` (never as ``<method>``: what
# the node answered a flawed request is not what it answers the library's own call);
# ``probe.request`` when its body names no method (not JSON, no envelope).
PROBE_PREFIX = "probe."
_SHOWN_TEXT_CHARS = 120


def history_enabled() -> bool:
    """False when ``TRIBES_QA_HISTORY`` is ``0``, ``off``, ``no`` or ``false``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "off", "no", "false")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    """First 16 hex digits of the sha256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:16]


def compact(what: str, value: Any) -> Any:
    """The compact form of a read: membership rows keyed by node id, sync servers as addresses,
    generations as selected/running; other values as they are."""
    if not isinstance(value, Mapping):
        return value
    if what == "cluster_nodes.list" and isinstance(value.get("nodes"), list):
        return {
            str(row.get("node_id")): {name: row.get(name) for name in _MEMBER_FIELDS}
            for row in value["nodes"]
            if isinstance(row, Mapping)
        }
    if what == "sync.status":
        servers = value.get("servers") if isinstance(value.get("servers"), list) else []
        return {
            "mode": value.get("mode"),
            "servers": [s.get("url") for s in servers if isinstance(s, Mapping)],
            "high_water_mark": value.get("high_water_mark"),
            "applied_events": value.get("applied_events"),
        }
    if what == "generation.status":
        return {
            "selected": value.get("selected"),
            "running": value.get("running"),
            "reboot_required": value.get("reboot_required"),
        }
    return value


def answer_summary(status: int, answer: Any) -> dict[str, Any]:
    """An HTTP answer in a few fields: the status and, for a management envelope, ``ok`` or the
    error code (never the message or the result: the history keeps what decides, compactly)."""
    if isinstance(answer, Mapping) and ("ok" in answer or "error" in answer):
        if answer.get("ok") is True:
            return {"status": status, "ok": True}
        return {"status": status, "error": str(answer.get("error") or f"http-{status}")}
    if isinstance(answer, Mapping):
        return {"status": status, "body": dict(answer)}
    return {"status": status, "text": str(answer)[:_SHOWN_TEXT_CHARS]}


def probe_envelope(body: bytes) -> tuple[str, dict[str, Any] | None]:
    """``(what, params)`` of a hand-made management request body: ``probe.<method>`` and the
    envelope's params (when they are an object), ``probe.request`` when it names no method."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return f"{PROBE_PREFIX}request", None
    method = envelope.get("method") if isinstance(envelope, dict) else None
    if not isinstance(method, str) or not method or len(method) > 64 or " " in method:
        return f"{PROBE_PREFIX}request", None
    params = envelope.get("params")
    return f"{PROBE_PREFIX}{method}", dict(params) if isinstance(params, dict) else None


def wall_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class SuiteHistory:
    """One suite's records: kept in memory for the checker, written to ``path`` in batches."""

    suite: str
    path: Path | None
    records: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))


class HistoryRecorder:
    """Appends records to the current suite's history; ``scrub`` cleans each before writing."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = history_enabled() if enabled is None else enabled
        self._lock = threading.Lock()
        self._stack: list[SuiteHistory] = []
        self._ops = itertools.count(1)
        self.test: str | None = None
        self.scrub: Callable[[Any], Any] = lambda data: data

    # -- suites --------------------------------------------------------------------------------
    def begin_suite(self, suite: str, path: Path | None) -> None:
        with self._lock:
            self._stack.append(SuiteHistory(suite, path))

    def end_suite(self) -> SuiteHistory | None:
        self.flush()
        with self._lock:
            return self._stack.pop() if self._stack else None

    @property
    def current(self) -> SuiteHistory | None:
        return self._stack[-1] if self._stack else None

    def records(self) -> list[dict[str, Any]]:
        """The current suite's records so far (a copy)."""
        with self._lock:
            return list(self.current.records) if self.current else []

    # -- appending -----------------------------------------------------------------------------
    def _append(
        self, kind: str, node: str | None, what: str, value: Any, op: str | None
    ) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        record = {
            "seq": 0,
            "type": kind,
            "test": self.test,
            "node": node,
            "what": what,
            "op": op,
            "mono": time.monotonic(),
            "wall": wall_now(),
            "digest": None if value is None else digest(value),
            "value": value,
        }
        with self._lock:
            history = self.current
            if history is None:
                return None
            record["seq"] = next(history.seq)
            history.records.append(record)
        return record

    def observe(self, node: str | None, what: str, value: Any) -> None:
        """A read: ``value`` is the answer as parsed JSON (compacted here)."""
        if self.enabled:
            self._append("observation", node, what, compact(what, value), None)

    def info(self, node: str | None, what: str, value: Any = None) -> None:
        self._append("info", node, what, value, None)

    def invoke(self, node: str | None, what: str, params: Any = None) -> str:
        op = f"op-{next(self._ops)}"
        self._append("invoke", node, what, params, op)
        return op

    def complete(self, op: str, node: str | None, what: str, result: Any = None) -> None:
        self._append("ok", node, what, compact(what.split(":", 1)[-1], result), op)

    def failed(self, op: str, node: str | None, what: str, error: BaseException | str) -> None:
        self._append("fail", node, what, {"error": _one_line(error)}, op)

    @contextmanager
    def operation(self, node: str | None, what: str, params: Any = None) -> Iterator[list[Any]]:
        """``with recorder.operation(node, what, params) as out: ...; out.append(result)``:
        invoke, then ok with the result appended (or fail with the exception, re-raised)."""
        op = self.invoke(node, what, params)
        out: list[Any] = []
        try:
            yield out
        except BaseException as error:
            self.failed(op, node, what, error)
            raise
        self.complete(op, node, what, out[0] if out else None)

    def call(self, node: str, method: str, params: dict[str, Any], run: Callable[..., Any]) -> Any:
        """A management call through the history: reads are observations (a failed read is
        observed as ``{"error": ...}``), ``OPERATION_METHODS`` are operations."""
        if not self.enabled:
            return run(method, params)
        if method in OPERATION_METHODS:
            with self.operation(node, method, params) as out:
                out.append(run(method, params))
            return out[0]
        try:
            result = run(method, params)
        except Exception as error:
            self._append("observation", node, method, {"error": _one_line(error)}, None)
            raise
        self.observe(node, method, result)
        return result

    def exchange(
        self,
        node: str,
        what: str,
        params: Any,
        send: Callable[[], tuple[int, Any]],
        *,
        write: bool = False,
    ) -> tuple[int, Any]:
        """A hand-made HTTP request (``send`` returns its status and answer), summarised by
        ``answer_summary``: a read is an observation; a ``write`` is an operation, ok when the
        node accepted it (200, ``ok: true``) and fail (status and error code) when it refused.
        A request that gets no answer is observed (or fails) as ``{"error": ...}``, re-raised."""
        if not self.enabled:
            return send()
        if not write:
            try:
                status, answer = send()
            except Exception as error:
                self._append("observation", node, what, {"error": _one_line(error)}, None)
                raise
            self._append("observation", node, what, answer_summary(status, answer), None)
            return status, answer
        op = self.invoke(node, what, params)
        try:
            status, answer = send()
        except BaseException as error:
            self.failed(op, node, what, error)
            raise
        summary = answer_summary(status, answer)
        self._append("ok" if summary.get("ok") is True else "fail", node, what, summary, op)
        return status, answer

    def probe(self, node: str, body: bytes, send: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        """A hand-made management request (``body`` as sent; its headers never reach the
        history): ``probe.<method>``, an operation when the method changes a node
        (``OPERATION_METHODS``: a node that wrongly accepts it changes), else an observation."""
        what, params = probe_envelope(body)
        write = what.removeprefix(PROBE_PREFIX) in OPERATION_METHODS
        return self.exchange(node, what, params, send, write=write)

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> Path | None:
        """Write the current suite's new records (scrubbed) to its file; return the path."""
        with self._lock:
            history = self.current
            if history is None or history.path is None:
                return None
            fresh = history.records[history.written :]
            history.written = len(history.records)
        if not fresh:
            return history.path if history.path.exists() else None
        lines = [canonical(self.scrub(record)) for record in fresh]
        history.path.parent.mkdir(parents=True, exist_ok=True)
        with history.path.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        return history.path


def read_history(path: Path) -> list[dict[str, Any]]:
    """The records of a ``history.jsonl`` file, in order."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split())[:500] or type(error).__name__
