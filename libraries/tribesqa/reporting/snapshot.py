"""Per-node cluster snapshots on disk: what every node and Legion said at one moment.

``capture_snapshot`` writes ``<output>/artifacts/<suite>/<test>/<label>/``:

* ``<node>.json`` per node Legion knows with an admin URL: ``cluster_nodes``,
  ``cluster_status``, ``sync.status``, ``generation.status``, ``tribe.status``, ``diagnostics``
  (each the result, ``"unreachable: <reason>"`` or ``"error: <code>: <message>"``);
* ``_membership_diff.json``: the membership matrix (rows x nodes cells, differing cells);
* ``_legion.json``: Legion's sanitized snapshot.

Capturing never raises (problems are returned) and is quick on dead nodes: short per-call
timeouts, no readiness retries, and the remaining calls to a node are skipped once it proved
unreachable. Nothing written may carry secret material: every document is scrubbed for the
admin key, the SSH private key and whatever ``models.find_secret_material`` flags.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tribesqa.clients.management_client import ManagementClient, ManagementError
from tribesqa.contract import find_secret_material
from tribesqa.fan_out import fan_out
from tribesqa.reporting.diffing import Matrix, membership_matrix, summarize

__all__ = [
    "REDACTED",
    "SNAPSHOT_CALLS",
    "CaptureResult",
    "SecretScrubber",
    "artifact_dir",
    "capture_snapshot",
    "matrix_document",
    "probe_node",
    "safe_name",
]

SNAPSHOT_CALLS: tuple[tuple[str, str], ...] = (
    ("cluster_nodes", "cluster_nodes.list"),
    ("cluster_status", "cluster_status"),
    ("sync.status", "sync.status"),
    ("generation.status", "generation.status"),
    ("tribe.status", "tribe.status"),
    ("diagnostics", "diagnostics"),
)
"""(key in ``<node>.json``, management method)."""

REDACTED = "<redacted>"
SUITE_LEVEL = "_suite"
"""Directory used for the test level when no test runs (suite setup/teardown)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_TRANSPORT_CODES = ("unreachable",)


def safe_name(text: str, fallback: str = "_") -> str:
    """A file-system-safe single path component: ``Suites.Cluster Lifecycle`` -> ``Suites.Cluster_Lifecycle``."""
    cleaned = _UNSAFE.sub("_", str(text)).strip("._")[:80]
    return cleaned or fallback


def artifact_dir(output_dir: Path, suite: str, test: str | None, label: str | None = None) -> Path:
    """``<output>/artifacts/<suite>/<test or _suite>[/<label>]`` with every part sanitized."""
    path = Path(output_dir) / "artifacts" / safe_name(suite, "suite")
    path /= safe_name(test, SUITE_LEVEL) if test else SUITE_LEVEL
    return path / safe_name(label, "snapshot") if label is not None else path


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------


class SecretScrubber:
    """Removes secret material from JSON-shaped data and says where it was.

    Keys that ``find_secret_material`` flags by name (private_key, token, ...) are dropped
    (their value would still be flagged by name if kept); string values it flags (nsec, PEM)
    or that contain one of the ``forbidden`` substrings (the admin key in hex and nsec, the
    lines of the SSH private key) become ``<redacted>``. A mapping document gets a
    ``_redacted`` list of the paths touched, so a reader knows something was there.
    """

    def __init__(self, forbidden: Iterable[str] = ()) -> None:
        self.forbidden = sorted({f for f in forbidden if f and len(f) >= 16}, key=len, reverse=True)

    @classmethod
    def for_keys(cls, admin_key: Any = None, ssh_key_file: Path | None = None) -> SecretScrubber:
        forbidden: list[str] = []
        if admin_key is not None:
            for attribute in ("secret_hex", "secret_nsec"):
                try:
                    forbidden.append(str(getattr(admin_key, attribute)()))
                except Exception:  # a key object without that form: nothing to look for
                    continue
        if ssh_key_file is not None:
            try:
                text = Path(ssh_key_file).read_text(errors="replace")
            except OSError:
                text = ""
            forbidden += [
                line.strip() for line in text.splitlines() if line.strip() and "-----" not in line
            ]
        return cls(forbidden)

    def scrub(self, data: Any, path: str = "") -> tuple[Any, list[str]]:
        """Return (clean copy, paths redacted); the copy passes ``find_secret_material``."""
        found: list[str] = []
        clean = self._walk(data, path, found)
        if found and isinstance(clean, dict):
            clean["_redacted"] = list(found)
        # Belt and braces: whatever the walker missed, the project's own scan must not find.
        leftovers = find_secret_material(clean)
        if leftovers:
            found += leftovers
            clean = {"error": f"{REDACTED}: secret material at {', '.join(leftovers[:5])}"}
        return clean, found

    def _walk(self, data: Any, path: str, found: list[str]) -> Any:
        if isinstance(data, Mapping):
            result: dict[str, Any] = {}
            for key, value in data.items():
                child = f"{path}.{key}" if path else str(key)
                if find_secret_material({str(key): None}):
                    found.append(child)  # dropped: the key's name alone is flagged
                else:
                    result[str(key)] = self._walk(value, child, found)
            return result
        if isinstance(data, list | tuple):
            return [self._walk(item, f"{path}[{i}]", found) for i, item in enumerate(data)]
        if isinstance(data, str):
            if find_secret_material(data):
                found.append(path)
                return REDACTED
            text = data
            for secret in self.forbidden:
                if secret in text:
                    text = text.replace(secret, REDACTED)
            if text != data:
                found.append(path)
            return text
        return data


# ---------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------


def _describe_error(error: BaseException) -> tuple[str, bool]:
    """(text for the snapshot, whether the node is unreachable)."""
    if isinstance(error, ManagementError):
        if error.code in _TRANSPORT_CODES:
            return f"unreachable: {error.reason}", True
        return f"error: {error.code}: {error.reason}", False
    text = " ".join(str(error).split()) or type(error).__name__
    return f"error: {type(error).__name__}: {text}", False


def probe_node(
    call: Callable[[str], Any], calls: Iterable[tuple[str, str]] = SNAPSHOT_CALLS
) -> dict[str, Any]:
    """Run the snapshot calls on one node; once unreachable, skip the rest with the same reason."""
    document: dict[str, Any] = {}
    unreachable: str | None = None
    for key, method in calls:
        if unreachable is not None:
            document[key] = unreachable
            continue
        try:
            document[key] = call(method)
        except Exception as error:  # a broken node is what a snapshot is for
            text, dead = _describe_error(error)
            document[key] = text
            if dead:
                unreachable = text
    return document


def matrix_document(matrix: Matrix) -> dict[str, Any]:
    """The membership matrix as JSON: cells per row x node, differing cells, one-line summary."""
    differing = sorted(matrix.differing())
    return {
        "summary": summarize(matrix) if matrix.nodes else "no node answered",
        "nodes": list(matrix.nodes),
        "unreachable": list(matrix.unreachable),
        "fields": list(matrix.fields),
        "rows": list(matrix.row_keys),
        "cells": {
            row: {node: matrix.cell(row, node) for node in matrix.reachable}
            for row in matrix.row_keys
        },
        "differing": [{"row": r, "node": n, "field": f} for r, n, f in differing],
    }


def _membership_rows(document: Mapping[str, Any]) -> list[Any] | None:
    value = document.get("cluster_nodes")
    if isinstance(value, Mapping) and isinstance(value.get("nodes"), list):
        rows = [row for row in value["nodes"] if isinstance(row, Mapping)]
        return rows if len(rows) == len(value["nodes"]) else None
    return None


def _run_with_deadline(action: Callable[[], Any], timeout_s: float) -> Any:
    """Run ``action`` in a daemon thread; raise TimeoutError if it takes longer than ``timeout_s``.

    A daemon thread, so that a hung Legion CLI can never keep the test run alive.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = action()
        except BaseException as error:
            box["error"] = error

    worker = threading.Thread(target=run, name="tribesqa-capture", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ---------------------------------------------------------------------------------------------
# Capturing
# ---------------------------------------------------------------------------------------------


@dataclass
class CaptureResult:
    """Where a snapshot went and what went wrong while taking it."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)
    """Link label -> file: one per node, plus ``_membership_diff`` and ``_legion``."""
    matrix: Matrix | None = None
    problems: list[str] = field(default_factory=list)
    redactions: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def links(self, base: Path) -> dict[str, str]:
        """Link label -> path relative to ``base`` (the directory of log.html)."""
        return {
            label: Path(os.path.relpath(path, base)).as_posix()
            for label, path in self.files.items()
        }


def _write_json(path: Path, data: Any, scrubber: SecretScrubber, result: CaptureResult) -> None:
    clean, found = scrubber.scrub(data)
    if found:
        result.redactions += [f"{path.name}: {where}" for where in found]
    path.write_text(json.dumps(clean, indent=1, sort_keys=False, default=str) + "\n")


def capture_snapshot(
    directory: Path,
    *,
    legion_snapshot: Callable[[], Any] | None,
    cached_nodes: Mapping[str, str | None],
    client_for: Callable[[str, str], ManagementClient],
    scrubber: SecretScrubber,
    legion_timeout_s: float = 10.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CaptureResult:
    """Probe every node concurrently and write the snapshot files into ``directory``.

    ``legion_snapshot()`` returns Legion's snapshot model (its ``nodes`` give the admin URLs);
    when it fails, ``cached_nodes`` (name -> admin URL) is used instead. ``client_for(name,
    admin_url)`` builds a short-timeout management client. Never raises.
    """
    started = datetime.now(UTC)
    result = CaptureResult(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        result.problems.append(f"cannot create {directory}: {error}")
        return result

    legion_doc: Any
    admin_urls: dict[str, str] = {}
    try:
        if legion_snapshot is None:
            raise RuntimeError("no target is open")
        snapshot = _run_with_deadline(legion_snapshot, legion_timeout_s)
        legion_doc = snapshot.model_dump(mode="json", by_alias=True)
        for node in snapshot.nodes:
            if node.admin_url:
                admin_urls[node.name] = node.admin_url
    except Exception as error:  # Legion down or leaking: record it, fall back to the cache
        legion_doc = {"error": f"Legion snapshot failed: {' '.join(str(error).split())[:500]}"}
        result.problems.append(legion_doc["error"])
        admin_urls = {name: url for name, url in cached_nodes.items() if url}

    def one(name: str) -> dict[str, Any]:
        client = client_for(name, admin_urls[name])
        try:
            document = probe_node(client.call)
        finally:
            client.close()
        return {
            "node": name,
            "captured_at": clock().isoformat().replace("+00:00", "Z"),
            "admin_url": admin_urls[name],
            **document,
        }

    documents: dict[str, dict[str, Any]] = {}
    if admin_urls:
        captured, failed = fan_out(sorted(admin_urls), one)
        for name in sorted(admin_urls):  # building the client failed: still a file
            documents[name] = captured.get(name) or {
                "node": name,
                "error": f"capture failed: {failed.get(name)}",
            }
    else:
        result.problems.append("no node with an admin URL to capture")

    for name, document in documents.items():
        path = directory / f"{safe_name(name, 'node')}.json"
        _write_json(path, document, scrubber, result)
        result.files[name] = path

    views = {name: _membership_rows(doc) for name, doc in documents.items()}
    try:
        result.matrix = membership_matrix(views)
        diff_doc: Any = matrix_document(result.matrix)
    except Exception as error:  # rows of the wrong shape: say so rather than crash
        diff_doc = {"error": f"membership matrix not built: {error}"}
        result.problems.append(diff_doc["error"])
    diff_path = directory / "_membership_diff.json"
    _write_json(diff_path, diff_doc, scrubber, result)
    result.files["_membership_diff"] = diff_path

    legion_path = directory / "_legion.json"
    _write_json(legion_path, legion_doc, scrubber, result)
    result.files["_legion"] = legion_path
    result.seconds = (datetime.now(UTC) - started).total_seconds()
    return result
