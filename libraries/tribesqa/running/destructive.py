"""The production guard on ``tribes-qa run``'s command line.

On a target that is not a private simulated fleet (``kind: real``) a run leaves out every test
tagged ``destructive`` (``--exclude destructive``) unless ``--allow-destructive`` is given;
then it tells the library too (``--variable ALLOW_DESTRUCTIVE:true``, which outranks the
target file), so the destructive keywords those tests call are not refused. The library's own
guard (``tribesqa.guard``) still refuses a destructive keyword a non-destructive test calls.
"""

from __future__ import annotations

from pathlib import Path

from tribesqa.guard import TAG, VARIABLE


def target_is_real(target: Path) -> bool:
    """Is the target file a real fleet (``TARGET.kind: real``)? Validated with the models."""
    from tribesqa.config import TargetKind, validate_target_file

    return validate_target_file(target).TARGET.kind is TargetKind.REAL


def guard_options(target: Path, allow_destructive: bool) -> list[str]:
    """The robot options the guard adds for a run of ``target``."""
    if allow_destructive:
        return ["--variable", f"{VARIABLE}:true"]
    if target_is_real(target):
        return ["--exclude", TAG]
    return []


def guard_notice(target: Path, allow_destructive: bool) -> str | None:
    """One line for the console saying what the guard did (None on a simulated target)."""
    if allow_destructive:
        return f"tribes-qa run: --allow-destructive: tests tagged {TAG} run, {VARIABLE} is true"
    if target_is_real(target):
        return (
            f"tribes-qa run: {target} is a real fleet: tests tagged {TAG} are excluded "
            f"(--allow-destructive runs them)"
        )
    return None
