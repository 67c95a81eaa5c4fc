"""The history's taps on Legion, the nemesis and the plugin API: thin proxies that record each
operation (invoke / ok / fail) and Legion's node list (an observation), then delegate."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel

from tribesqa.history.recorder import HistoryRecorder

LEGION_OPERATIONS = frozenset(
    {
        "provision_init",
        "plan_join",
        "materialize",
        "decommission",
        "replace",
        "reactivate",
        "destroy",
        "destroy_all",
    }
)
# nemesis method -> what the history calls it
NEMESIS_OPERATIONS = {
    "partition": "fault.partition",
    "heal_all": "heal.all",
    "crash": "fault.crash",
    "restart": "fault.restart",
    "recover": "fault.restart",  # a crashed node brought back: the crash ends
    "outage": "fault.outage",
}
_PLUGIN_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def plain(value: Any) -> Any:
    """Contract models and lists of them as JSON-shaped data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class _Proxy:
    def __init__(self, inner: Any, history: HistoryRecorder) -> None:
        self._inner = inner
        self._history = history

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RecordingLegion(_Proxy):
    """A ``LegionDriver`` whose operations and node lists go into the history."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name == "list_nodes":
            return self._list_nodes
        if name not in LEGION_OPERATIONS or not callable(attribute):
            return attribute

        def operation(*args: Any, **kwargs: Any) -> Any:
            node = str(args[0]) if args and name not in ("plan_join", "provision_init") else None
            params = {"args": [str(a) for a in args], **{k: str(v) for k, v in kwargs.items()}}
            with self._history.operation(node, f"legion.{name}", params) as out:
                result = attribute(*args, **kwargs)
                out.append(plain(result))
            return result

        return operation

    def _list_nodes(self) -> Any:
        records = self._inner.list_nodes()
        self._history.observe(
            None, "legion.list", {r.name: getattr(r.status, "value", r.status) for r in records}
        )
        return records


class RecordingNemesis(_Proxy):
    """A ``Nemesis`` whose faults and heals go into the history."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        what = NEMESIS_OPERATIONS.get(name)
        if what is None or not callable(attribute):
            return attribute

        def operation(*args: Any, **kwargs: Any) -> Any:
            node = str(args[0]) if args else None
            params = {"args": [plain(a) for a in args], **{k: plain(v) for k, v in kwargs.items()}}
            with self._history.operation(node, what, params) as out:
                result = attribute(*args, **kwargs)
                out.append(plain(result))
            return result

        return operation


def record_plugin_request(
    history: HistoryRecorder, node: str, method: str, path: str, body: Any, send: Any
) -> tuple[int, Any]:
    """A plugin API request: a write is an operation (ok carries status and answer), a read an
    observation of ``plugin.<path>`` (with its query, e.g. the ``run_id`` a state read is for)."""
    if not history.enabled:
        return send()
    route, _, query = path.lstrip("/").partition("?")
    what = f"plugin.{route}"
    if method.upper() in _PLUGIN_WRITES:
        with history.operation(
            node, f"plugin.write:{what}", {"method": method, "body": body}
        ) as out:
            out.append(send())
        status, answer = out[0]
        return status, answer
    status, answer = send()
    seen: dict[str, Any] = {"status": status, "body": answer}
    if query:
        seen["query"] = dict(parse_qsl(query))
    history.observe(node, what, seen)
    return status, answer
