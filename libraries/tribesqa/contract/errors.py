"""Contract violations as one readable error naming the source, the field path and the value;
``parse_payload`` is the one way a payload becomes a model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------------------------
# Rule violations raised by our own validators
# --------------------------------------------------------------------------------------------

# Context keys that let a model-level validator point at one field (and show its value) instead
# of the whole object: ContractError reads them back when it builds its problems.
_CTX_FIELD = "contract_field"
_CTX_VALUE = "contract_value"
_MISSING_SHOWN = "<missing>"
_REDACTED_SHOWN = "<redacted>"
_MAX_VALUE_CHARS = 80


def _join_path(base: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{base}[{part}]"
    return f"{base}.{part}" if base else part


def _show(value: Any) -> str:
    """Render an offending value for a message: repr, datetimes as ISO text, at most 80 chars."""
    shown = repr(value.isoformat()) if isinstance(value, datetime) else repr(value)
    if len(shown) > _MAX_VALUE_CHARS:
        shown = shown[: _MAX_VALUE_CHARS - 3] + "..."
    return shown


def _rule_violation(field_path: str, shown_value: str, message: str) -> PydanticCustomError:
    """A validation error for a cross-field rule, attributed to ``field_path`` below the model."""
    # Braces would be read as template placeholders by pydantic-core.
    safe_message = message.replace("{", "(").replace("}", ")")
    return PydanticCustomError(
        "contract_rule", safe_message, {_CTX_FIELD: field_path, _CTX_VALUE: shown_value}
    )


# --------------------------------------------------------------------------------------------
# Parsing with readable errors
# --------------------------------------------------------------------------------------------

_MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class ContractProblem:
    """One way a payload misses the contract: where, what was there, why it is wrong."""

    path: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} = {self.value} ({self.reason})"


class ContractError(ValueError):
    """A payload does not match its contract model; ``str()`` is one readable sentence."""

    def __init__(self, source: str, model_name: str, problems: list[ContractProblem]) -> None:
        self.source = source
        self.model_name = model_name
        self.problems = problems
        super().__init__(self._message())

    def _message(self) -> str:
        shown = "; ".join(str(problem) for problem in self.problems[:_MAX_PROBLEMS_SHOWN])
        hidden = len(self.problems) - _MAX_PROBLEMS_SHOWN
        if hidden > 0:
            shown += f"; and {hidden} more"
        return f"{self.source} returned a payload that does not match {self.model_name}: {shown}"

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self) -> tuple[Any, ...]:
        # The constructor does not take the message, so pickling (pabot, multiprocessing)
        # must rebuild from the parts.
        return (type(self), (self.source, self.model_name, self.problems))

    @classmethod
    def from_validation_error(
        cls, error: ValidationError, *, source: str, model_name: str
    ) -> ContractError:
        """Translate pydantic's error list into contract problems."""
        problems = [_problem_from_error(detail) for detail in error.errors(include_url=False)]
        return cls(source, model_name, problems)


def _format_loc(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        path = _join_path(path, part)
    return path


def _problem_from_error(detail: Mapping[str, Any]) -> ContractProblem:
    path = _format_loc(detail["loc"])
    context = detail.get("ctx") or {}
    if _CTX_FIELD in context:
        # Our own rule violation: point at the field it is about, not at the whole object.
        field_path = str(context[_CTX_FIELD])
        if not path:
            path = field_path
        elif field_path.startswith("["):
            path += field_path
        else:
            path = f"{path}.{field_path}"
        value = str(context.get(_CTX_VALUE, _show(detail.get("input"))))
    elif detail["type"] == "missing":
        value = _MISSING_SHOWN
    else:
        value = _show(detail.get("input"))
    reason = str(detail["msg"]).removeprefix("Value error, ")
    return ContractProblem(path=path or "<payload>", value=value, reason=reason)


M = TypeVar("M", bound=BaseModel)


def parse_payload(model: type[M], payload: Any, *, source: str) -> M:
    """Validate ``payload`` (decoded JSON, or JSON text/bytes) as ``model``.

    ``source`` says where it came from (``"node hetzner-1 / cluster_nodes.list"``) and opens the
    error message. Raises :class:`ContractError`, never a pydantic error.
    """
    try:
        if isinstance(payload, str | bytes | bytearray):
            return model.model_validate_json(payload)
        return model.model_validate(payload)
    except ValidationError as exc:
        # "from None": the translated message says everything, pydantic's traceback adds noise.
        raise ContractError.from_validation_error(
            exc, source=source, model_name=model.__name__
        ) from None
