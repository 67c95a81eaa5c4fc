"""The doctor's report as text: target-wide checks, a nodes x checks table, then the reasons.

Every ✗ (and every skipped check) is listed under the table as ``node / check: reason``, so a
failure always names its node and check. Details of passing checks show with ``verbose``.
"""

from __future__ import annotations

from tribesqa.running.doctor import DoctorReport
from tribesqa.running.doctor_checks import NODE_CHECKS, Check


def render(report: DoctorReport, *, verbose: bool = False) -> str:
    lines = [f"tribes-qa doctor: {report.file}: {report.title or 'target file'}", ""]
    width = max((len(c.name) for c in report.target_checks), default=0)
    for check in report.target_checks:
        lines.append(f"  {check.mark} {check.name:<{width}}  {check.detail}")
    if report.nodes:
        lines += ["", *_table(report)]
    reasons = [line for row in report.nodes.values() for line in _reasons(row, verbose)]
    if reasons:
        lines += ["", *reasons]
    lines += ["", _verdict(report)]
    return "\n".join(lines) + "\n"


def _reasons(row: list[Check], verbose: bool) -> list[str]:
    """``node / check: reason`` for each cell not passed; the checks skipped because of an
    earlier one (Legion, or no list at all) are summed up on one line."""
    shown = [c for c in row if verbose or c.ok is not True]
    rest = row[1:]
    if rest and all(c.ok is None and c.detail == rest[0].detail for c in rest):
        first = row[0]
        if first.ok is None and first.detail == rest[0].detail:
            return [f"  - {first.subject} / every check: {first.detail}"]
        if first.ok is not True:
            tail = f"; the {len(rest)} other checks {rest[0].detail}"
            return [f"  {first.mark} {first.subject} / {first.name}: {first.detail}{tail}"]
    return [f"  {c.mark} {c.subject} / {c.name}: {c.detail}" for c in shown]


def _table(report: DoctorReport) -> list[str]:
    first = max(len("node"), *(len(name) for name in report.nodes))
    header = "  " + "node".ljust(first) + "  " + "  ".join(NODE_CHECKS)
    rows = [header]
    for name, checks in report.nodes.items():
        by_check = {c.name: c for c in checks}
        cells = [_cell(by_check.get(column), len(column)) for column in NODE_CHECKS]
        rows.append("  " + name.ljust(first) + "  " + "  ".join(cells).rstrip())
    return rows


def _cell(check: Check | None, width: int) -> str:
    return ("?" if check is None else check.mark).ljust(width)


def _verdict(report: DoctorReport) -> str:
    failures = report.failures
    checks = report.all_checks()
    if not failures:
        passed = sum(1 for c in checks if c.ok)
        return f"OK: {passed} check(s) passed, {len(checks) - passed} skipped"
    named = ", ".join(f"{c.subject}/{c.name}" for c in failures)
    return f"FAILED: {len(failures)} check(s): {named}"
