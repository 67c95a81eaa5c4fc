"""Field types of the wire format (RFC 3339 times at the writer's precision, keys, store paths,
transport addresses) and the base of every contract model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WrapValidator,
)

from tribesqa.contract.node_time import fraction_digits, render

# --------------------------------------------------------------------------------------------
# Constrained scalar types
# --------------------------------------------------------------------------------------------

_PUBKEY_RE = re.compile(r"^[0-9a-f]{64}$")
_STORE_PATH_RE = re.compile(r"^/gnu/store/[0-9a-z]{32}-system$")
_TRANSPORT_SCHEMES = ("http", "https", "ws", "wss")


def _reject_epoch_numbers(value: Any) -> Any:
    # pydantic would happily read 1700000000 as a UTC datetime; the wire format is RFC 3339 text.
    if isinstance(value, int | float):
        raise ValueError("timestamps must be RFC 3339 strings, not epoch numbers")
    return value


def _as_utc(value: datetime) -> datetime:
    # Normalise so comparisons and re-serialisation ("...Z") do not depend on the sender's offset.
    return value.astimezone(UTC)


class NodeTime(datetime):
    """A parsed node time that remembers how many fractional-second digits its writer used.

    Comparisons with runner times must happen at the writer's precision (``tribesqa.contract.node_time``),
    and JSON-shaped rows are re-serialised from the models: without the digits a node's
    ``…43.902Z`` would come back as ``…43.902000Z`` and look microsecond-precise.
    """

    digits: int = 6

    @classmethod
    def of(cls, moment: datetime, digits: int) -> NodeTime:
        made = cls(
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
            tzinfo=moment.tzinfo,
        )
        made.digits = digits
        return made

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # datetime's own reduction rebuilds a plain copy: keep the writer's digits through
        # copy, deepcopy and pickle (pabot hands values between processes).
        return (_node_time, (self.isoformat(), self.digits))


def _node_time(text: str, digits: int) -> NodeTime:
    return NodeTime.of(datetime.fromisoformat(text), digits)


def _keep_digits(value: Any, handler: Any) -> datetime:
    parsed = handler(value)
    digits = fraction_digits(value) if isinstance(value, str) else getattr(value, "digits", 6)
    return NodeTime.of(parsed, digits)


def _render_time(value: datetime) -> str:
    return render(value, getattr(value, "digits", 6))


def _check_pubkey(value: str) -> str:
    if not _PUBKEY_RE.fullmatch(value):
        raise ValueError("must be a 64-character lowercase hex public key")
    return value


def _check_store_path(value: str) -> str:
    if not _STORE_PATH_RE.fullmatch(value):
        raise ValueError("must be a system generation store path /gnu/store/<32 chars>-system")
    return value


def _check_transport_address(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in _TRANSPORT_SCHEMES:
        raise ValueError(
            f"transport address scheme must be one of {', '.join(_TRANSPORT_SCHEMES)} "
            "(expected scheme://host:port)"
        )
    if not parts.hostname:
        raise ValueError("transport address has no host (expected scheme://host:port)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"transport address has an invalid port ({exc})") from None
    if port is None:
        raise ValueError("transport address must name its port explicitly (scheme://host:port)")
    return value


#: An RFC 3339 timestamp with a timezone, normalised to UTC; JSON keeps the writer's precision.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_reject_epoch_numbers),
    AfterValidator(_as_utc),
    WrapValidator(_keep_digits),
    PlainSerializer(_render_time, when_used="json"),
]
#: A Nostr x-only public key: 64 lowercase hex characters.
Pubkey = Annotated[str, AfterValidator(_check_pubkey)]
#: A Guix system generation: ``/gnu/store/<32 chars>-system``.
StorePath = Annotated[str, AfterValidator(_check_store_path)]
#: ``scheme://host:port`` with scheme http/https/ws/wss and an explicit port.
TransportAddress = Annotated[str, AfterValidator(_check_transport_address)]


class ContractModel(BaseModel):
    """Base of every contract model: unknown keys ignored, instances immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)
