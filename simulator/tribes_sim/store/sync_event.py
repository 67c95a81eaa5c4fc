"""One entry of the replicated log, as stored and as sent between nodes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SyncEvent:
    """One entry of the replicated log."""

    origin: str
    seq: int
    hlc: str
    ns: str
    kind: str
    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "seq": self.seq,
            "hlc": self.hlc,
            "ns": self.ns,
            "kind": self.kind,
            "data": self.data,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> SyncEvent:
        return cls(
            origin=str(raw["origin"]),
            seq=int(raw["seq"]),
            hlc=str(raw["hlc"]),
            ns=str(raw["ns"]),
            kind=str(raw["kind"]),
            data=dict(raw["data"]),
        )
