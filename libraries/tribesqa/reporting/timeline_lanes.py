"""A test's history records sorted into the lanes of its timeline picture (no drawing here).

* one lane per membership row x observer: a band per status as that observer read it
  (``cluster_nodes.list``), from one reading to the next (the last one runs to the end);
* one lane per node: operations (invoke -> ok/fail), faults and heals (``fault.*`` / ``heal.*``),
  info records, and strips for the sync mode (``sync.status``) and a selected generation that is
  not the running one (``generation.status``);
* a ``run`` lane for records that name no node: the invariant checker's verdict
  (``history.check``) is a mark there.

Hand-made requests (``probe.<method>`` observations, ``healthz``) are marks on their node's
lane, accepted or refused; a hand-made write (``probe.sync.resync``) is an operation like any.

Times are seconds from the start of the picture (the records' ``mono`` minus the start).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MEMBERSHIP_WHAT = "cluster_nodes.list"
CHECK_WHAT = "history.check"
REQUEST_PREFIX = "probe."
HEALTH_WHAT = "healthz"
RUN_LANE = "run"
ROW_H = 18
NODE_H = 30


def short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Band:
    start: float
    end: float
    label: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Mark:
    kind: str  # op | fault | heal | info | request | check
    start: float
    end: float | None
    what: str
    outcome: str
    detail: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Lane:
    key: str
    label: str
    height: int
    bands: list[Band] = field(default_factory=list)
    strips: list[Band] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


def _membership_rows(value: Any) -> dict[str, dict[str, Any]]:
    """``{node_id: {status, ...}}`` from the compact form (or a list of rows with ``node_id``)."""
    if isinstance(value, Mapping):
        rows = value.get("nodes", value)
        if isinstance(rows, Mapping):
            return {str(k): dict(v) for k, v in rows.items() if isinstance(v, Mapping)}
        value = rows
    if isinstance(value, list):
        return {
            str(row["node_id"]): dict(row)
            for row in value
            if isinstance(row, Mapping) and "node_id" in row
        }
    return {}


def _spans(readings: list[tuple[float, str | None, Mapping[str, str]]], end: float) -> list[Band]:
    """Consecutive readings with the same label collapse; ``None`` (row absent) draws nothing."""
    bands: list[Band] = []
    for index, (at, label, attrs) in enumerate(readings):
        until = readings[index + 1][0] if index + 1 < len(readings) else max(end, at)
        if label is None:
            continue
        if bands and bands[-1].label == label and bands[-1].end == at:
            bands[-1].end = until
            continue
        bands.append(Band(at, until, label, dict(attrs)))
    return bands


class LaneBuilder:
    def __init__(self, records: list[Mapping[str, Any]], start: float, end: float) -> None:
        self.records = records
        self.start = start
        self.end = end
        self.lanes: dict[str, Lane] = {}

    def t(self, record: Mapping[str, Any]) -> float:
        return mono_of(record, self.start) - self.start

    def lane(self, key: str, label: str, height: int) -> Lane:
        return self.lanes.setdefault(key, Lane(key, label, height))

    def node_lane(self, node: str | None) -> Lane:
        name = node or RUN_LANE
        return self.lane(f"node:{name}", name if node else "run (no node)", NODE_H)

    def build(self) -> list[Lane]:
        self._membership()
        self._strips(
            "sync.status", "sync", lambda v: v.get("mode") if isinstance(v, dict) else None
        )
        self._strips("generation.status", "generation", _pending_generation)
        self._operations()
        self._requests()
        order = sorted(
            self.lanes.values(), key=lambda lane: (not lane.key.startswith("row:"), lane.key)
        )
        return order

    def _membership(self) -> None:
        readings: dict[str, list[tuple[float, dict[str, dict[str, Any]]]]] = {}
        for record in self.records:
            if record.get("type") == "observation" and record.get("what") == MEMBERSHIP_WHAT:
                observer = str(record.get("node") or RUN_LANE)
                readings.setdefault(observer, []).append(
                    (self.t(record), _membership_rows(record.get("value")))
                )
        for observer, seen in readings.items():
            rows = sorted({row for _, table in seen for row in table})
            for row in rows:
                series = [
                    (
                        at,
                        str(table[row].get("status")) if row in table else None,
                        {"data-node": row, "data-observer": observer},
                    )
                    for at, table in seen
                ]
                lane = self.lane(f"row:{row}@{observer}", f"row {row} @ {observer}", ROW_H)
                for band in _spans(series, self.end - self.start):
                    band.attrs["data-status"] = band.label
                    lane.bands.append(band)

    def _strips(self, what: str, kind: str, label_of: Any) -> None:
        series: dict[str, list[tuple[float, str | None, Mapping[str, str]]]] = {}
        for record in self.records:
            if record.get("type") == "observation" and record.get("what") == what:
                node = str(record.get("node") or RUN_LANE)
                label = label_of(record.get("value"))
                series.setdefault(node, []).append(
                    (self.t(record), None if label is None else str(label), {"data-node": node})
                )
        for node, readings in series.items():
            lane = self.node_lane(None if node == RUN_LANE else node)
            for band in _spans(readings, self.end - self.start):
                band.attrs.update({"class": kind, "data-value": band.label})
                lane.strips.append(band)

    def _operations(self) -> None:
        opened: dict[str, Mark] = {}
        for record in self.records:
            kind = record.get("type")
            what = str(record.get("what") or "")
            node = record.get("node")
            if kind in {"invoke", "info"}:
                family = what.split(".", 1)[0]
                mark_kind = (
                    family
                    if family in ("fault", "heal")
                    else ("op" if kind == "invoke" else "info")
                )
                outcome = "open" if kind == "invoke" else "info"
                if kind == "info" and what == CHECK_WHAT:
                    mark_kind, outcome = "check", _verdict(record.get("value"))
                mark = Mark(
                    mark_kind,
                    self.t(record),
                    None,
                    what,
                    outcome,
                    short(record.get("value")),
                    {"data-node": str(node or RUN_LANE), "data-what": what},
                )
                if record.get("op"):
                    mark.attrs["data-op"] = str(record["op"])
                    opened[str(record["op"])] = mark
                self.node_lane(node).marks.append(mark)
            elif kind in ("ok", "fail") and record.get("op") in opened:
                mark = opened.pop(str(record["op"]))
                mark.end = self.t(record)
                mark.outcome = str(kind)
                if kind == "fail":
                    mark.detail = short(record.get("value"))

    def _requests(self) -> None:
        for record in self.records:
            what = str(record.get("what") or "")
            if record.get("type") != "observation" or not (
                what.startswith(REQUEST_PREFIX) or what == HEALTH_WHAT
            ):
                continue
            node = record.get("node")
            self.node_lane(node).marks.append(
                Mark(
                    "request",
                    self.t(record),
                    None,
                    what,
                    request_outcome(record.get("value")),
                    short(record.get("value")),
                    {"data-node": str(node or RUN_LANE), "data-what": what},
                )
            )


def request_outcome(value: Any) -> str:
    """``accepted`` (HTTP 2xx), ``refused`` (any other status) or ``no-answer`` (no status)."""
    status = value.get("status") if isinstance(value, Mapping) else None
    if not isinstance(status, int) or isinstance(status, bool):
        return "no-answer"
    return "accepted" if 200 <= status < 300 else "refused"


def _verdict(value: Any) -> str:
    held = value.get("held") if isinstance(value, Mapping) else None
    return "held" if held is True else "broken"


def mono_of(record: Mapping[str, Any], default: Any) -> Any:
    value = record.get("mono")
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _pending_generation(value: Any) -> str | None:
    if (
        isinstance(value, dict)
        and value.get("selected")
        and value.get("selected") != value.get("running")
    ):
        return "selected≠running"
    return None
