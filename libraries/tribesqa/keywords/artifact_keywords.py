"""Artifacts: per-node cluster snapshots, captured on demand and automatically on failure.

The library is its own listener: when a step of a test body fails, ``on_keyword_end``
captures a ``failure`` snapshot (once per test) and logs its links under the failed step.
Waits that fail call ``ctx.capture_failure`` first, so their report links the snapshot taken
at that moment; the listener then does not capture the same failure twice.
"""

from __future__ import annotations

import html
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from robot import result as robot_result
from robot.api import logger
from robot.api.deco import keyword

from tribesqa.clients.management_client import ManagementClient
from tribesqa.context import LibraryContext
from tribesqa.keywords.component import Component
from tribesqa.reporting.report_html import matrix_table_html
from tribesqa.reporting.snapshot import (
    CaptureResult,
    SecretScrubber,
    artifact_dir,
    capture_snapshot,
    safe_name,
)

CAPTURE_CALL_TIMEOUT_S = 5.0
"""Upper bound of one management call while capturing (the profile's may be longer)."""

LEGION_CAPTURE_TIMEOUT_S = 10.0
"""How long a capture waits for Legion's snapshot before writing what it has."""

FAILURE_LABEL = "failure"

# Body items that sit between a test and its steps without being steps themselves.
_CONTROL_STRUCTURES: tuple[type, ...] = tuple(
    getattr(robot_result, name)
    for name in (
        "For",
        "ForIteration",
        "While",
        "WhileIteration",
        "If",
        "IfBranch",
        "Try",
        "TryBranch",
        "Group",
    )
    if hasattr(robot_result, name)
)


def is_test_step(result: Any) -> bool:
    """True for a keyword in a test's body (possibly inside FOR/IF/TRY/WHILE/GROUP).

    Setup and teardown keywords, and keywords called by other keywords, are not steps.
    """
    if getattr(result, "type", None) != "KEYWORD":
        return False
    parent = getattr(result, "parent", None)
    while isinstance(parent, _CONTROL_STRUCTURES):
        parent = parent.parent
    return isinstance(parent, robot_result.TestCase)


class ArtifactKeywords(Component):
    """Snapshots of every node and Legion into ``<OUTPUT DIR>/artifacts/<suite>/<test>/<label>/``."""

    TAGS = ("artifact",)  # keyword tags in libdoc: this component's domain

    def __init__(self, ctx: LibraryContext) -> None:
        super().__init__(ctx)
        self._failure_at: datetime | None = None
        self._failure_links: dict[str, str] = {}
        self._listener_captured = False
        self._used_dirs: set[Path] = set()
        ctx.capture_failure = self.capture_failure_snapshot

    # -- capturing ---------------------------------------------------------------------------
    def _test_dir(self) -> Path:
        labels = self.ctx.labels
        return artifact_dir(labels.output_dir, labels.suite, labels.test)

    def _free_dir(self, label: str) -> Path:
        """The label's directory; ``<label>-2``... when this run already used it.

        A directory left by an earlier run into the same output directory is replaced, like
        output.xml and log.html are.
        """
        base = self._test_dir() / safe_name(label, "snapshot")
        candidate, index = base, 1
        while candidate in self._used_dirs:
            index += 1
            candidate = base.with_name(f"{base.name}-{index}")
        self._used_dirs.add(candidate)
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        return candidate

    def _capture(self, label: str) -> CaptureResult:
        target = self.ctx.require_target()
        timeouts = self.ctx.require_timeouts()
        call_timeout = min(timeouts.management_call, CAPTURE_CALL_TIMEOUT_S)
        try:
            key: Any = self.ctx.admin_key()
        except Exception as error:  # still capture Legion; node calls will say why they failed
            logger.debug(f"capture without admin key: {error}")
            key = None
        try:
            ssh_key = target.ssh_key_file()
        except Exception:
            ssh_key = None
        scrubber = SecretScrubber.for_keys(key, ssh_key)

        def client_for(name: str, admin_url: str) -> ManagementClient:
            if key is None:
                raise RuntimeError("the admin key could not be loaded")
            return self.ctx.new_client(
                name, admin_url, patient=False, timeout_s=call_timeout, key=key
            )

        result = capture_snapshot(
            self._free_dir(label),
            legion_snapshot=target.legion.snapshot,
            cached_nodes={name: r.admin_url for name, r in dict(self.ctx.records).items()},
            client_for=client_for,
            scrubber=scrubber,
            legion_timeout_s=LEGION_CAPTURE_TIMEOUT_S,
        )
        if result.redactions:
            logger.warn(
                f"snapshot {result.directory.name}: redacted secret material in "
                + ", ".join(result.redactions[:10])
            )
        return result

    def _report_html(self, title: str, result: CaptureResult) -> str:
        links = result.links(self.ctx.labels.output_dir)
        anchors = " · ".join(
            f'<a href="{html.escape(href, quote=True)}">{html.escape(label)}</a>'
            for label, href in links.items()
        )
        parts = [
            '<div class="tribes-snapshot" style="font-family:sans-serif">',
            f"<div><b>{html.escape(title)}</b> ({len(result.files) - 2} node(s), "
            f"{result.seconds:.1f} s): {anchors}</div>",
        ]
        if result.matrix is not None and result.matrix.nodes:
            parts.append(matrix_table_html(result.matrix, title="membership row \\ observer"))
        for problem in result.problems:
            parts.append(f'<div style="color:#a00000">{html.escape(problem)}</div>')
        parts.append("</div>")
        return "\n".join(parts)

    def capture_failure_snapshot(self) -> dict[str, str]:
        """Capture the ``failure`` snapshot now; return its links (relative to OUTPUT DIR).

        Called by waits just before they fail, so their report can link it. Never raises.
        """
        try:
            if self.ctx.target is None:
                return {}
            result = self._capture(FAILURE_LABEL)
            self._failure_at = datetime.now()
            self._failure_links = result.links(self.ctx.labels.output_dir)
            return dict(self._failure_links)
        except Exception as error:
            logger.warn(f"failure snapshot not captured: {error}")
            return {}

    # -- listener hooks ----------------------------------------------------------------------
    def on_test_start(self) -> None:
        self._failure_at = None
        self._failure_links = {}
        self._listener_captured = False

    def on_keyword_end(self, data: Any, result: Any) -> None:
        """Capture once per test when a test step fails (never raises)."""
        if getattr(result, "status", None) != "FAIL" or not is_test_step(result):
            return
        if self.ctx.target is None or self._listener_captured:
            return
        started = getattr(result, "start_time", None)
        if self._failure_at is not None and (started is None or self._failure_at >= started):
            return  # the failing step captured (and linked) its own snapshot
        self._listener_captured = True
        try:
            captured = self._capture(FAILURE_LABEL)
            logger.info(
                self._report_html(f"Failure snapshot after '{result.name}'", captured), html=True
            )
            for problem in captured.problems:
                logger.debug(f"failure snapshot: {problem}")
        except Exception as error:
            logger.warn(f"failure snapshot not captured after '{result.name}': {error}")

    # -- keywords ----------------------------------------------------------------------------
    @keyword
    def capture_cluster_snapshot(self, label: str = "snapshot") -> str:
        """Write what every node and Legion say now; returns the snapshot directory.

        For every node Legion knows with an admin URL (probed concurrently, short timeouts):
        ``<OUTPUT DIR>/artifacts/<suite>/<test>/<label>/<node>.json`` with ``cluster_nodes``,
        ``cluster_status``, ``sync.status``, ``generation.status``, ``tribe.status`` and
        ``diagnostics`` (each the result, ``unreachable: ...`` or ``error: <code>: ...``), plus
        ``_membership_diff.json`` and ``_legion.json``. Logs links and the membership table.
        Secret material is redacted before anything is written.

        Example:
        | ${dir}=    Capture Cluster Snapshot    before-partition
        """
        captured = self._capture(str(label))
        logger.info(self._report_html(f"Snapshot '{label}'", captured), html=True)
        for problem in captured.problems:
            logger.warn(f"snapshot '{label}': {problem}")
        return str(captured.directory)

    @keyword
    def get_artifacts_directory(self) -> str:
        """The current test's artifact directory (created if needed).

        ``<OUTPUT DIR>/artifacts/<suite>/<test>``; in suite setup/teardown the test part is
        ``_suite``.

        Example:
        | ${dir}=    Get Artifacts Directory
        | Create File    ${dir}/notes.txt    partition started
        """
        path = self._test_dir()
        path.mkdir(parents=True, exist_ok=True)
        return str(path)
