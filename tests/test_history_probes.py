"""Hand-made requests in the run history: admin probes, management bodies, ``/healthz``, SSH, and
the invariant checker's own verdict; what is recorded, and what never is (headers, keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tribesqa.clients.admin_probe import PROBE_BODY, bad_request, send
from tribesqa.clients.keys import AdminKey
from tribesqa.clients.management_client import ManagementClient, ManagementError
from tribesqa.history import HistoryRecorder, read_history
from tribesqa.history.invariants import Violation
from tribesqa.history.recorder import answer_summary, probe_envelope
from tribesqa.keywords.history_keywords import verdict

SECRET = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
ADMIN = AdminKey.from_hex(SECRET)
URL = "http://127.0.0.1:21001"


def _recorder(tmp_path: Path) -> HistoryRecorder:
    recorder = HistoryRecorder(enabled=True)
    recorder.begin_suite("S", tmp_path / "history.jsonl")
    recorder.test = "S.T"
    return recorder


def _client(recorder: HistoryRecorder | None, answer: Any) -> tuple[ManagementClient, list[Any]]:
    """A real management client whose HTTP goes to ``answer(request)`` (no node)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    client = ManagementClient(
        "hetzner-1", URL, ADMIN, timeout_s=1.0, ready_timeout_s=0.0, recorder=recorder
    )
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    return client, seen


def _summary(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["type"], r["node"], r["what"], r["value"]) for r in records]


def test_answers_are_summarised_by_status_and_error_code() -> None:
    assert answer_summary(200, {"ok": True, "result": {"pubkey": "p"}}) == {
        "status": 200,
        "ok": True,
    }
    refused = {"ok": False, "error": "auth-required", "message": "no header"}
    assert answer_summary(401, refused) == {"status": 401, "error": "auth-required"}
    assert answer_summary(502, {"ok": False}) == {"status": 502, "error": "http-502"}
    assert answer_summary(200, {"status": "ok"}) == {"status": 200, "body": {"status": "ok"}}
    assert answer_summary(500, "x" * 500) == {"status": 500, "text": "x" * 120}


def test_a_body_names_its_probe_by_method() -> None:
    assert probe_envelope(PROBE_BODY) == ("probe.node.info", {})
    resync = json.dumps({"method": "sync.resync", "params": {"full": True}}).encode()
    assert probe_envelope(resync) == ("probe.sync.resync", {"full": True})
    assert probe_envelope(b"not json") == ("probe.request", None)
    assert probe_envelope(b'{"params": {}}') == ("probe.request", None)
    assert probe_envelope(b'{"method": "node.info", "params": [1]}') == ("probe.node.info", None)
    assert probe_envelope(b'{"method": "a method with spaces"}') == ("probe.request", None)


def test_every_admin_probe_is_observed_with_its_refusal_and_never_its_headers(
    tmp_path: Path,
) -> None:
    recorder = _recorder(tmp_path)
    refusal = {"ok": False, "error": "invalid-auth-event", "message": "bad signature"}
    client, seen = _client(recorder, lambda request: httpx.Response(401, json=refusal))
    request = bad_request("bad signature", ADMIN, client.endpoint)
    assert send(client, request.body, request.headers, what="node.info") == (401, refusal)
    assert _summary(recorder.records()) == [
        (
            "observation",
            "hetzner-1",
            "probe.node.info",
            {"status": 401, "error": "invalid-auth-event"},
        )
    ]
    written = recorder.flush().read_text()
    authorization = seen[0].headers["authorization"]
    assert authorization.startswith("Nostr ")
    assert authorization.split()[1] not in written and "authorization" not in written.lower()
    assert SECRET not in written


def test_a_probed_write_is_an_operation_failing_when_refused(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    refusal = {"ok": False, "error": "unsafe-operation", "message": "decommissioned"}
    client, _ = _client(recorder, lambda request: httpx.Response(409, json=refusal))
    body = json.dumps({"method": "sync.resync", "params": {"full": True}}).encode()
    send(client, body, {"content-type": "application/json"}, what="sync.resync")
    accepted, _ = _client(recorder, lambda request: httpx.Response(200, json={"ok": True}))
    send(accepted, body, {"content-type": "application/json"}, what="sync.resync")
    records = recorder.records()
    assert _summary(records) == [
        ("invoke", "hetzner-1", "probe.sync.resync", {"full": True}),
        ("fail", "hetzner-1", "probe.sync.resync", {"status": 409, "error": "unsafe-operation"}),
        ("invoke", "hetzner-1", "probe.sync.resync", {"full": True}),
        ("ok", "hetzner-1", "probe.sync.resync", {"status": 200, "ok": True}),
    ]
    assert records[0]["op"] == records[1]["op"] != records[2]["op"] == records[3]["op"]


def test_a_probe_nothing_answers_is_recorded_and_still_raised(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client, _ = _client(recorder, refuse)
    with pytest.raises(ManagementError, match=r"node hetzner-1 / node\.info failed: unreachable"):
        send(client, PROBE_BODY, {}, what="node.info")
    body = json.dumps({"method": "rollout.start", "params": {"plan_id": "p"}}).encode()
    with pytest.raises(ManagementError):
        send(client, body, {}, what="rollout.start")
    kinds = [(r["type"], r["what"], "unreachable" in str(r["value"])) for r in recorder.records()]
    assert kinds == [
        ("observation", "probe.node.info", True),
        ("invoke", "probe.rollout.start", False),
        ("fail", "probe.rollout.start", True),
    ]


def test_healthz_is_observed_and_nothing_is_recorded_without_a_recorder(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    client, _ = _client(recorder, lambda request: httpx.Response(503, json={"status": "starting"}))
    assert client.healthz() == (503, {"status": "starting"})
    assert _summary(recorder.records()) == [
        ("observation", "hetzner-1", "healthz", {"status": 503, "body": {"status": "starting"}})
    ]
    bare, _ = _client(None, lambda request: httpx.Response(200, json={"status": "ok"}))
    assert bare.healthz() == (200, {"status": "ok"})
    assert send(bare, PROBE_BODY, {}, what="node.info")[0] == 200
    off = HistoryRecorder(enabled=False)
    off.begin_suite("S", tmp_path / "off.jsonl")
    assert off.probe("n", PROBE_BODY, lambda: (401, {"error": "auth-required"}))[0] == 401
    assert off.records() == [] and len(recorder.records()) == 1


def test_the_checker_verdict_names_what_broke() -> None:
    assert verdict(12, []) == {"records": 12, "held": True, "violations": 0, "broken": []}
    second = {"seq": 2, "what": "cluster_nodes.list"}
    violations = [
        Violation("forward-only", f"n{i}", "n0", None, second, "went back") for i in range(7)
    ]
    judged = verdict(40, violations)
    assert (judged["held"], judged["violations"], len(judged["broken"])) == (False, 7, 5)
    assert judged["broken"][0] == {"invariant": "forward-only", "node": "n0"}


def test_recorded_probes_keep_the_history_format(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder.probe("a", b"not json", lambda: (400, {"ok": False, "error": "invalid-payload"}))
    [record] = read_history(recorder.flush())
    assert set(record) == {"seq", "type", "test", "node", "what", "op", "mono", "wall"} | {
        "digest",
        "value",
    }
    assert (record["what"], record["value"]) == (
        "probe.request",
        {"status": 400, "error": "invalid-payload"},
    )
