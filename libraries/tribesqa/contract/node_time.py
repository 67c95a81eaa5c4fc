"""Comparing a time a node wrote with a time the runner took: at the node's precision, after skew.

A node stamps ``decommissioned_at`` or ``activated_at`` at its own resolution (whole seconds,
milliseconds, microseconds) and by its own clock; the runner's ``Get Current Time UTC`` has
microseconds and the runner's clock. A node that writes in the same tick as the runner's reading
stamps a time *before* it (``…43.902Z`` < ``…43.902392Z``) although it wrote after it. So every
such comparison truncates the runner time to the stamp's resolution after moving it by the
``clock_skew`` allowance. This module is the one place that does it; it is pure (no I/O).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "NodeStamp",
    "certainly_after",
    "not_before",
    "parse_stamp",
    "truncate",
]

# The seconds field of an RFC 3339 time and its optional fraction: "…:43" or "…:43.902".
_SECONDS_FRACTION = re.compile(r":\d{2}(?:[.,](\d+))?(?=(?:[zZ]|[+-]\d{2}:?\d{2})?$)")
_MICROSECOND_DIGITS = 6


@dataclass(frozen=True, slots=True)
class NodeStamp:
    """A node-written time and the resolution it was written at."""

    moment: datetime
    """Aware UTC."""
    digits: int
    """Fractional-second digits the writer kept (0 = whole seconds; at most 6 count)."""

    @property
    def resolution(self) -> timedelta:
        """The stamp's tick: 1 s, 1 ms, 1 µs (or 10 ms... for other digit counts)."""
        return timedelta(microseconds=10 ** (_MICROSECOND_DIGITS - self.digits))

    def text(self) -> str:
        """The stamp as RFC 3339 UTC text at its own precision, e.g. ``…43.902Z``."""
        return render(self.moment, self.digits)


def fraction_digits(text: str) -> int:
    """How many fractional-second digits an RFC 3339 text carries (capped at microseconds)."""
    match = _SECONDS_FRACTION.search(text.strip())
    if match is None or match.group(1) is None:
        return 0
    return min(len(match.group(1)), _MICROSECOND_DIGITS)


def parse_stamp(value: str | datetime | NodeStamp) -> NodeStamp:
    """A node time from RFC 3339 text (its precision read from the text) or a datetime.

    A datetime carries no precision of its own: it counts as microseconds unless it remembers
    the digits it was read with (``digits`` attribute, see ``tribesqa.contract.Timestamp``).
    Raises ValueError for text that is not an aware RFC 3339 time.
    """
    if isinstance(value, NodeStamp):
        return value
    if isinstance(value, datetime):
        digits = getattr(value, "digits", _MICROSECOND_DIGITS)
        moment = value
    else:
        text = str(value).strip()
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        digits = fraction_digits(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone")
    return NodeStamp(moment.astimezone(UTC), digits)


def truncate(moment: datetime, resolution: timedelta) -> datetime:
    """``moment`` cut down to a multiple of ``resolution`` since the epoch (never rounded up)."""
    step = resolution // timedelta(microseconds=1)
    if step <= 1:
        return moment
    since_epoch = (moment - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=since_epoch - since_epoch % step)


def not_before(stamp: NodeStamp, runner_time: datetime, skew_s: float = 0.0) -> bool:
    """Could the node have written ``stamp`` at or after ``runner_time``?

    True when the stamp is not before the runner time moved back by the skew allowance and
    truncated to the stamp's resolution: a write in the same tick counts as not before.
    """
    bound = truncate(runner_time.astimezone(UTC) - timedelta(seconds=skew_s), stamp.resolution)
    return stamp.moment >= bound


def certainly_after(stamp: NodeStamp, runner_time: datetime, skew_s: float = 0.0) -> bool:
    """Did the node certainly write ``stamp`` after ``runner_time``, whatever the skew?

    True only when the stamp is later than the runner time plus the skew allowance: a node
    clock ahead by up to ``skew_s`` cannot make an older write look newer. Truncation only
    makes a stamp earlier, so no tick is added here.
    """
    return stamp.moment > runner_time.astimezone(UTC) + timedelta(seconds=skew_s)


def render(moment: datetime, digits: int) -> str:
    """RFC 3339 UTC text with ``digits`` fractional-second digits (0 to 6)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits > 0:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + "Z"


def bound_text(runner_time: datetime, skew_s: float, stamp: NodeStamp) -> str:
    """The bound ``not_before`` compared with, as text at the stamp's precision (for messages)."""
    bound = truncate(runner_time.astimezone(UTC) - timedelta(seconds=skew_s), stamp.resolution)
    return render(bound, stamp.digits)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
