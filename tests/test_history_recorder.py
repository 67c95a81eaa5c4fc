"""The run history recorder: the format, thread-safe appends, scrubbed batches, the switch."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tribesqa.history import HistoryRecorder, read_history
from tribesqa.history.recorder import compact, digest
from tribesqa.history.wrappers import RecordingNemesis, record_plugin_request
from tribesqa.reporting.snapshot import SecretScrubber

WALL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
KEY = "ab" * 32


def _recorder(tmp_path: Path) -> HistoryRecorder:
    recorder = HistoryRecorder(enabled=True)
    recorder.begin_suite("S", tmp_path / "artifacts" / "S" / "history.jsonl")
    return recorder


def test_records_follow_the_history_format(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder.test = "S.T"
    rows = {"nodes": [{"node_id": "a", "status": "active", "activated_at": "x", "pubkey": "p"}]}
    recorder.call("a", "cluster_nodes.list", {}, lambda method, params: rows)
    path = recorder.flush()
    [record] = read_history(path)
    assert set(record) == {"seq", "type", "test", "node", "what", "op", "mono", "wall"} | {
        "digest",
        "value",
    }
    assert (record["seq"], record["type"], record["test"], record["node"]) == (
        1,
        "observation",
        "S.T",
        "a",
    )
    assert WALL.match(record["wall"])
    # membership rows in their compact form, keyed by node id; the digest is of that form
    assert record["value"] == {
        "a": {
            "status": "active",
            "activated_at": "x",
            "decommissioned_at": None,
            "transport_address": None,
        }
    }
    assert record["digest"] == digest(record["value"]) and len(record["digest"]) == 16


def test_operations_link_invoke_to_ok_or_fail(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder.call("a", "sync.resync", {"full": True}, lambda m, p: {"job_id": "j1"})

    def refuse(method: str, params: dict) -> None:
        raise AssertionError("node a / rollout.start failed: unsafe-operation: no")

    with pytest.raises(AssertionError):
        recorder.call("a", "rollout.start", {}, refuse)
    kinds = [(r["type"], r["what"], r["op"]) for r in recorder.records()]
    assert kinds == [
        ("invoke", "sync.resync", "op-1"),
        ("ok", "sync.resync", "op-1"),
        ("invoke", "rollout.start", "op-2"),
        ("fail", "rollout.start", "op-2"),
    ]
    assert "unsafe-operation" in recorder.records()[-1]["value"]["error"]


def test_a_failed_read_is_observed_as_its_error(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)

    def unreachable(method: str, params: dict) -> None:
        raise AssertionError("node a / sync.status failed: unreachable: refused")

    with pytest.raises(AssertionError):
        recorder.call("a", "sync.status", {}, unreachable)
    [record] = recorder.records()
    assert record["type"] == "observation" and "unreachable" in record["value"]["error"]


def test_concurrent_appends_get_unique_ordered_seqs(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: recorder.observe(f"n{i % 4}", "sync.status", {"i": i}), range(400)))
    recorder.flush()
    recorder.observe("n0", "sync.status", {"i": 400})
    recorder.flush()
    seqs = [r["seq"] for r in read_history(tmp_path / "artifacts" / "S" / "history.jsonl")]
    assert seqs == list(range(1, 402))


def test_secrets_are_scrubbed_when_written(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder.scrub = lambda record: SecretScrubber([KEY]).scrub(record)[0]
    recorder.observe("a", "diagnostics", {"log": f"loaded key {KEY}", "private_key": KEY})
    text = recorder.flush().read_text()
    assert KEY not in text and "<redacted>" in text and '"private_key":' not in text


def test_suites_nest_and_the_switch_turns_everything_off(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder.begin_suite("S.Child", tmp_path / "child.jsonl")
    recorder.observe("a", "node.info", {})
    assert recorder.end_suite().records[0]["seq"] == 1
    recorder.observe("a", "node.info", {})
    assert [r["seq"] for r in recorder.records()] == [1]

    off = HistoryRecorder(enabled=False)
    off.begin_suite("S", tmp_path / "off.jsonl")
    assert off.call("a", "node.info", {}, lambda m, p: {"ok": 1}) == {"ok": 1}
    assert off.records() == [] and off.flush() is None


def test_switch_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBES_QA_HISTORY", "0")
    assert HistoryRecorder().enabled is False
    monkeypatch.setenv("TRIBES_QA_HISTORY", "1")
    assert HistoryRecorder().enabled is True


def test_compact_forms_of_sync_and_generation_status() -> None:
    sync = {
        "mode": "live",
        "servers": [{"node_id": "b", "url": "http://b:1", "connected": True}],
        "high_water_mark": 3,
        "applied_events": 3,
        "pending_events": 0,
    }
    assert compact("sync.status", sync)["servers"] == ["http://b:1"]
    generation = {"selected": "/g", "running": "/g", "reboot_required": False, "generations": []}
    assert compact("generation.status", generation) == {
        "selected": "/g",
        "running": "/g",
        "reboot_required": False,
    }


def test_faults_heals_and_plugin_writes_are_operations(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)

    class Nemesis:
        def partition(self, node: str, peers: list[str]) -> None:
            return None

        def heal_all(self) -> None:
            return None

    nemesis = RecordingNemesis(Nemesis(), recorder)
    nemesis.partition("a", ["b"])
    nemesis.heal_all()
    record_plugin_request(recorder, "a", "POST", "/cases", {"id": 1}, lambda: (201, {"id": 1}))
    record_plugin_request(recorder, "a", "GET", "/cases?x=1", None, lambda: (200, []))
    whats = [(r["type"], r["node"], r["what"]) for r in recorder.records()]
    assert whats == [
        ("invoke", "a", "fault.partition"),
        ("ok", "a", "fault.partition"),
        ("invoke", None, "heal.all"),
        ("ok", None, "heal.all"),
        ("invoke", "a", "plugin.write:plugin.cases"),
        ("ok", "a", "plugin.write:plugin.cases"),
        ("observation", "a", "plugin.cases"),
    ]


def test_a_crashed_node_brought_back_is_recorded_as_its_restart(tmp_path: Path) -> None:
    # `Crash Node`'s heal and `Restart Node` on a crashed node call `recover`: without its
    # record the crash would stay in effect for the rest of the suite's history.
    recorder = _recorder(tmp_path)

    class Nemesis:
        restarted: list[str] = []

        def crash(self, node: str) -> None:
            return None

        def restart(self, node: str) -> None:
            self.restarted.append(node)

        def recover(self, node: str) -> None:
            self.restart(node)

    inner = Nemesis()
    nemesis = RecordingNemesis(inner, recorder)
    nemesis.crash("a")
    nemesis.recover("a")
    whats = [(r["type"], r["node"], r["what"]) for r in recorder.records()]
    assert whats == [
        ("invoke", "a", "fault.crash"),
        ("ok", "a", "fault.crash"),
        ("invoke", "a", "fault.restart"),
        ("ok", "a", "fault.restart"),
    ]
    assert inner.restarted == ["a"]
