"""How a node (and Legion) writes times: UTC isoformat at a run-wide precision, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tribes_sim.settings import TIMESTAMP_PRECISIONS

# How finely nodes and Legion stamp times (an isoformat ``timespec``). Real Tribes nodes may write
# whole seconds; ``SimConfig.timestamp_precision`` lets a run make the simulator do the same.
_TIMESPEC = {"timespec": "milliseconds"}


def set_timestamp_precision(precision: str) -> None:
    """Make every later ``utc_now`` of this process stamp at ``precision``."""
    if precision not in TIMESTAMP_PRECISIONS:
        raise ValueError(f"timestamp_precision must be one of {', '.join(TIMESTAMP_PRECISIONS)}")
    _TIMESPEC["timespec"] = precision


def utc_now() -> str:
    moment = datetime.now(UTC).isoformat(timespec=_TIMESPEC["timespec"])
    return moment.replace("+00:00", "Z")


def backdated(stamp: str, seconds: float) -> str:
    """``stamp`` (a ``utc_now`` text) moved ``seconds`` into the past, same precision."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds)
    return moment.isoformat(timespec=_TIMESPEC["timespec"]).replace("+00:00", "Z")
