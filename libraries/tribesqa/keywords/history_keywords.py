"""The run history's keyword: the invariant checker over everything the suite observed so far."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.diagnostics import TribesFailure
from tribesqa.history import HISTORY_FILE, HistoryCheckError, Violation, check, failure_message
from tribesqa.keywords.component import Component
from tribesqa.reporting.snapshot import safe_name

CHECK_WHAT = "history.check"
_VERDICT_VIOLATIONS = 5


def verdict(checked: int, violations: list[Violation]) -> dict[str, Any]:
    """The ``history.check`` info value: how many records were judged, whether every invariant
    held, and the first violations (invariant and node; the failure message has the rest)."""
    return {
        "records": checked,
        "held": not violations,
        "violations": len(violations),
        "broken": [
            {"invariant": v.invariant, "node": v.node} for v in violations[:_VERDICT_VIOLATIONS]
        ],
    }


class HistoryKeywords(Component):
    """Every observation and operation of a suite goes to ``artifacts/<suite>/history.jsonl``;
    these keywords judge the whole of it, not just the checkpoints."""

    TAGS = ("history",)

    def history_path(self) -> Path:
        """``<output>/artifacts/<suite>/history.jsonl`` of the running suite."""
        labels = self.ctx.labels
        return labels.output_dir / "artifacts" / safe_name(labels.suite, "suite") / HISTORY_FILE

    def history_link(self) -> str:
        return self._relative(self.history_path())

    def _scrubbed(self, violations: Sequence[Violation]) -> list[Violation]:
        """The violations with their records scrubbed like every artifact: the failure message
        and log.html show what the history file holds, never more."""
        scrub = self.ctx.history.scrub
        return [
            replace(
                v,
                first=None if v.first is None else scrub(dict(v.first)),
                second=scrub(dict(v.second)),
            )
            for v in violations
        ]

    def _record_artifacts(
        self, violations: Sequence[Violation], checked: int, limit: int = 5
    ) -> list[list[str]]:
        """Each shown violation's two records as their own files next to the history:
        ``history-violations/at-<records checked>/<n>-first-seq<seq>.json`` (a later check in
        the same suite gets its own folder); the links, relative to the output directory, one
        list per violation."""
        folder = self.history_path().parent / "history-violations" / f"at-{checked}"
        links: list[list[str]] = []
        for number, violation in enumerate(violations[:limit], 1):
            pair: list[str] = []
            for side, record in (("first", violation.first), ("second", violation.second)):
                if record is None:
                    continue
                path = folder / f"{number}-{side}-seq{record.get('seq')}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
                pair.append(self._relative(path))
            links.append(pair)
        return links

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.ctx.labels.output_dir))
        except ValueError:
            return str(path)

    # -- listener hooks --------------------------------------------------------------------------
    def on_suite_start(self) -> None:
        self.ctx.history.begin_suite(self.ctx.labels.suite, None)

    def on_suite_end(self) -> None:
        """Close the suite's history; what its teardown did after the last check is judged
        too, and reported as a warning (the tests have all run by then)."""
        ended = self.ctx.history.end_suite()
        if ended is None or not ended.records:
            return
        try:
            violations = check(ended.records)
        except HistoryCheckError as error:
            logger.warn(f"{ended.suite}: {error}")
            return
        if violations:
            link = str(ended.path) if ended.path else None
            logger.warn(failure_message(self._scrubbed(violations), link, limit=2))

    @keyword
    def history_should_satisfy_invariants(self) -> None:
        """Fail when the suite's history so far breaks an invariant, naming the invariant, the
        node and the two observations that contradict each other, with a link to the history.

        The invariants (``tribesqa.history.invariants`` and ``plugin_invariants``): membership
        rows move forward per observer; activation stamps never decrease; no row for a node
        Legion never materialized; a decommissioned node's transport address never comes back
        into an observer's sync servers; after a job reported success, selected and running
        stay at its generation; every acknowledged plugin write is in each active node's last
        read after the last heal; no plugin value goes back. Resync, reactivation, crash and
        restart operations license their nodes' rows. The verdict is recorded too
        (``history.check``): the test's timeline picture shows it.

        Example:
        | History Should Satisfy Invariants
        """
        history = self.ctx.history
        if not history.enabled:
            logger.info("the run history is switched off (TRIBES_QA_HISTORY=0): nothing to check")
            return
        records = history.records()
        history.flush()
        # The test judges every node the suite observed: its row in the fleet matrix.
        for node in sorted({r["node"] for r in records if isinstance(r.get("node"), str)}):
            self.ctx.note_node(node)
        link = self.history_link()
        try:
            violations = check(records)
        except HistoryCheckError as error:
            history.info(
                None, CHECK_WHAT, {"records": len(records), "held": False, "error": str(error)}
            )
            raise TribesFailure(f"{error} ({link})") from None
        # The verdict goes into the history too: the test's picture shows it (it calls no node).
        history.info(None, CHECK_WHAT, verdict(len(records), violations))
        if violations:
            violations = self._scrubbed(violations)
            record_links = self._record_artifacts(violations, len(records))
            anchors = [link, *(path for pair in record_links for path in pair)]
            logger.info(
                " ".join(f'<a href="{html.escape(a)}">{html.escape(a)}</a>' for a in anchors),
                html=True,
            )
            raise TribesFailure(failure_message(violations, link, record_links=record_links))
        logger.info(f"{len(records)} history records hold every invariant ({link})")
