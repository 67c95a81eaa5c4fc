"""One place turns library errors into Robot failures: clean text, and a library bug says so."""

from __future__ import annotations

import pytest

from tribesqa.diagnostics import TribesFailure, clean_failure


def test_a_tribes_failure_passes_through_unchanged() -> None:
    failure = TribesFailure("node hetzner-1: membership not converged")
    assert clean_failure(failure) is failure


@pytest.mark.parametrize(
    "error",
    [AssertionError("node ovh-1 still syncing"), ValueError("node ovh-1 / sync.status: bad field")],
)
def test_findings_keep_their_own_message(error: Exception) -> None:
    assert str(clean_failure(error)) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        TypeError("_WaitSpec.__init__() takes from 4 to 5 positional arguments but 6 were given"),
        AttributeError("'SshSettings' object has no attribute 'prompt'"),
        KeyError("stage"),
    ],
)
def test_a_library_bug_is_named_as_one_not_as_a_cluster_finding(error: Exception) -> None:
    message = str(clean_failure(error))
    assert message.startswith(f"internal error in the test library ({type(error).__name__})")
    assert "not a finding about the cluster" in message
    assert "Traceback" not in message
