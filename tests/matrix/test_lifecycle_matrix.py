"""The lifecycle matrix itself: green against the simulator, green through the real-fleet strategy,
and red (with a readable message naming the node and the property) for every catalogue fault.

Fault runs of the sequential scenario suites use `--exitonfailure` (the first violated property
is the verdict; later steps build on earlier ones); the suites of independent tests run whole, so
every requirement a fault violates gets its own red test. All use a shorter timeouts column and a
shorter Legion join wait, two at a time. Two verdicts: each (fault, suite) run goes red in a test
tracing a requirement the fault violates, and each (fault, requirement) pair has a red test tagged
with that requirement in one of the fault's runs. The catch table (fault x suite) is printed at the
end of the pytest run.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from robot.api import ExecutionResult

from tests.matrix.conftest import REPO, RESULTS, SuiteRun, run_matrix
from tribes_sim.fault_catalogue import CATALOGUE

# The first teeth test carries the module fixture (every fault x suite run, two at a time):
# pytest-timeout counts fixture setup, so the default 300 s would cut a loaded run short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

NODE_NAME = re.compile(r"\b(hetzner|scaleway|ovh)-\d+\b")

# What a failure message must talk about when the fault is on (the violated property).
PROPERTY_WORDS: dict[str, re.Pattern[str]] = {
    "stuck-syncing": re.compile(r"syncing", re.I),
    "decommission-deletes-row": re.compile(r"row missing|not archived as decommissioned"),
    "rollback-keeps-tables": re.compile(r"table|migration", re.I),
    "one-way-sync": re.compile(r"event|case|plugin state", re.I),
    "heal-loses-writes": re.compile(r"case|plugin state|counter", re.I),
    "wrong-transport-address": re.compile(r"sync endpoint|transport", re.I),
    "backdated-decommission": re.compile(r"decommissioned_at", re.I),
    "stale-activated-at": re.compile(r"activated_at|activation", re.I),
    "selected-not-running": re.compile(r"selected|running", re.I),
    "replay-accepted": re.compile(r"replay", re.I),
    "counter-not-merged": re.compile(r"counter", re.I),
    "sync-mode-stuck-catching-up": re.compile(r"sync mode|catching_up", re.I),
    "restart-moves-transport": re.compile(r"transport", re.I),
    "stale-connected-status": re.compile(r"connected|cut|sync server", re.I),
    "decommissioned-keeps-syncing": re.compile(r"sync\.status|sync server", re.I),
    "decommissioned-reports-active": re.compile(r"self_status", re.I),
    "decommissioned-still-receives": re.compile(r"decommissioned but received", re.I),
    "resync-rejoins-decommissioned": re.compile(r"sync\.resync.*unsafe-operation", re.I),
    "unknown-method-500": re.compile(r"unknown-method", re.I),
    "invalid-params-accepted": re.compile(r"invalid-params", re.I),
    "rollout-ignores-missing-substitutes": re.compile(r"substitutes-missing", re.I),
    "concurrent-rollout-accepted": re.compile(r"rollout-in-progress", re.I),
    "unknown-job-200": re.compile(r"unknown-job", re.I),
    "sync-status-miscounted": re.compile(r"pending_events", re.I),
    "snapshot-leaks-secret": re.compile(r"secret material", re.I),
    "snapshot-drops-membership": re.compile(r"clusterMembership", re.I),
    "non-json-body-500": re.compile(r"invalid-payload", re.I),
    "unknown-plan-accepted": re.compile(r"unknown-plan", re.I),
    "rollback-unknown-generation-accepted": re.compile(r"unknown-generation", re.I),
    "healthz-plain-text": re.compile(r"healthz", re.I),
    "plugin-health-before-install": re.compile(r"absent|404", re.I),
    "plugin-schema-incomplete": re.compile(r"supertest_events|table", re.I),
    "last-node-decommission-accepted": re.compile(r"refused|unsafe-operation", re.I),
    "interrupted-run-leaves-provisioning": re.compile(r"planned", re.I),
    "host-header-trusted": re.compile(r"Host(:| header)"),
    "auth-optional": re.compile(r"Authorization header|auth-required|invalid-authorization"),
    "auth-signature-unchecked": re.compile(r"invalid-auth-event|signature|kind", re.I),
    "stale-auth-accepted": re.compile(r"stale", re.I),
    "auth-url-unchecked": re.compile(r"auth-url-tag-mismatch|another URL"),
    "auth-method-unchecked": re.compile(r"auth-method-tag-mismatch|signed for method"),
    "auth-payload-unchecked": re.compile(r"payload tag|auth-payload-mismatch"),
    "allowlist-open": re.compile(r"allowlist|forbidden-pubkey", re.I),
    "refused-event-cached": re.compile(r"replay cache", re.I),
    "scope-narrowed": re.compile(r"\.scope = "),
    "peer-transport-https": re.compile(r"transport_address", re.I),
    "decommissioned-still-synced": re.compile(r"still syncs with|sync server", re.I),
    "replace-skips-decommission": re.compile(r"not archived as decommissioned"),
    "late-peer-not-subscribed": re.compile(r"sync from active peer|sync server", re.I),
    "joiner-skips-tribe": re.compile(r"tribe", re.I),
    "outage-never-repairs": re.compile(r"syncing|outage|not visible", re.I),
    "interrupt-leaves-half-member": re.compile(r"membership row|never materialized", re.I),
    "selected-from-wrong-link": re.compile(r"links on disk"),
    "preview-hides-restart": re.compile(r"services that need a restart"),
    "substitutes-unreported": re.compile(r"substitutes missing for .* not reported"),
    "rollback-not-restarted": re.compile(r"selected|running", re.I),
    "plugin-runtime-survives-rollback": re.compile(r"plugin API should be absent", re.I),
    "rollback-replays-plan": re.compile(r"stays? at generation|selected|running", re.I),
    "sync-stopped-after-rollback": re.compile(r"cluster_status not healthy", re.I),
    "cases-not-replicated": re.compile(r"case .* not visible", re.I),
    "increments-not-replicated": re.compile(r"counter", re.I),
    "partition-leaks-publishes": re.compile(r"expected it to stay absent|cut from", re.I),
    "graph-run-one-node": re.compile(r"missing|planned|graph run", re.I),
    "status-counts-peers": re.compile(r"cluster_status says"),
    "malformed-authorization-accepted": re.compile(r"invalid-authorization"),
    "allowlist-checked-first": re.compile(
        r"invalid-auth-event.*forbidden-pubkey|forbidden-pubkey.*invalid-auth-event", re.S
    ),
    "decommissioned-forgets-own-row": re.compile(r"no row for itself"),
    "rollback-not-resumed": re.compile(r"interrupted by a restart"),
    "graph-run-allows-decommission": re.compile(r"Legion decommissioned .* should have refused"),
    "snapshot-drops-decommissioned": re.compile(
        r"clusterMembership.*decommissioned|decommissioned.*clusterMembership", re.I | re.S
    ),
    "row-flaps": re.compile(r"membership moves forward.*active -> syncing", re.I | re.S),
    "activation-stamp-regresses": re.compile(r"activation never decreases", re.I),
    "ghost-row": re.compile(r"no ghost rows.*never materialized", re.I | re.S),
    "decommissioned-server-flickers": re.compile(r"decommissioned server stays out", re.I),
    "success-report-stale-generation": re.compile(r"generation holds after success", re.I),
    "case-counter-flickers-back": re.compile(
        r"plugin values never go back.*went back", re.I | re.S
    ),
    "acknowledged-event-id-differs": re.compile(
        r"acknowledged writes survive.*is missing", re.I | re.S
    ),
}
PAIRS = [(fault.name, suite) for fault in CATALOGUE.values() for suite in fault.caught_by]

# Suites whose tests are independent (no `Skip If An Earlier Step Failed` chain, each test sets up
# what it needs): their fault runs go on after the first red test, so a fault violating several
# requirements turns each requirement's own test red.
INDEPENDENT_SUITES = frozenset({"admin_api_security", "management_api_contract"})
# A failure that is not a verdict of the test itself.
NOT_A_CATCH = ("exit-on-failure", "parent suite setup failed")


def _requirements_violated_by() -> dict[str, set[str]]:
    """fault -> the ids of the requirements (docs/requirements.yaml) that name it."""
    entries = yaml.safe_load((REPO / "docs" / "requirements.yaml").read_text())["requirements"]
    violated: dict[str, set[str]] = {}
    for entry in entries or []:
        for fault in entry.get("faults") or []:
            violated.setdefault(fault, set()).add(entry["id"])
    return violated


VIOLATES = _requirements_violated_by()
REQUIREMENT_PAIRS = sorted(
    (fault, requirement)
    for fault, requirements in VIOLATES.items()
    if fault in CATALOGUE
    for requirement in requirements
)
CATCH_TABLE: dict[tuple[str, str], str] = {}


def _short_timeouts(path: Path) -> Path:
    table = yaml.safe_load((REPO / "variables" / "timeouts.yaml").read_text())
    fast = dict(table["TIMEOUTS"]["sim"])
    for key in (
        "node_active",
        "membership_converged",
        "plugin_state_converged",
        "case_visible",
        "node_ready",
    ):
        # Short enough that the waits a fault breaks end soon, long enough that the healthy steps
        # before it pass with two robots sharing two cores.
        fast[key] = min(fast[key], 12)
    table["TIMEOUTS"]["sim"] = fast
    path.write_text(yaml.safe_dump(table))
    return path


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], SuiteRun]:
    timeouts = _short_timeouts(tmp_path_factory.mktemp("timeouts") / "timeouts.yaml")
    env = {
        "TRIBES_QA_TIMEOUTS": str(timeouts),
        "TRIBES_SIM_OVERRIDES": json.dumps({"legion_wait_active_s": 10}),
    }

    def run(pair: tuple[str, str]) -> SuiteRun:
        fault, suite = pair
        return run_matrix(
            RESULTS / "teeth" / f"{fault}--{suite}",
            suites=[suite],
            faults=fault,
            extra=[] if suite in INDEPENDENT_SUITES else ["--exitonfailure"],
            env=env,
        )

    # Two at a time on two cores: more would let a healthy step time out first and hide
    # the fault's own verdict.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(PAIRS, pool.map(run, PAIRS), strict=True))


def test_every_fault_has_a_property_pattern() -> None:
    assert set(PROPERTY_WORDS) == set(CATALOGUE)


def _real_failures(run: SuiteRun) -> dict[str, str]:
    """The red tests that are verdicts of their own (not exit-on-failure, not a setup's echo)."""
    return {
        name: message
        for name, message in run.failures.items()
        if not any(marker in message.lower() for marker in NOT_A_CATCH)
    }


def _readable(fault: str, message: str) -> bool:
    return bool(
        NODE_NAME.search(message)
        and PROPERTY_WORDS[fault].search(message)
        and "Traceback" not in message
    )


@pytest.mark.parametrize("suite", sorted(INDEPENDENT_SUITES))
def test_suites_run_whole_under_a_fault_have_independent_tests(suite: str) -> None:
    text = (REPO / "suites" / f"{suite}.robot").read_text()
    assert "Skip If An Earlier Step Failed" not in text, (
        f"{suite} chains its tests: run it with --exitonfailure (drop it from INDEPENDENT_SUITES)"
    )


def _tests_without_a_picture(outputdir: Path) -> list[str]:
    """Tests of a run whose log.html holds no timeline picture (issue 14: every test has one)."""
    tests = ExecutionResult(str(outputdir / "output.xml")).suite.all_tests
    return [
        test.full_name
        for test in tests
        if not any(
            item.type == "MESSAGE" and item.html and 'class="tribes-timeline"' in item.message
            for item in test.body
        )
    ]


def test_matrix_passes_against_the_simulator() -> None:
    run = run_matrix(RESULTS / "matrix-sim")
    assert run.failures == {}, "the matrix failed with no fault switched on:\n" + "\n".join(
        f"{name}: {message}" for name, message in run.failures.items()
    )
    assert run.passed >= 20, f"only {run.passed} tests ran"
    assert _tests_without_a_picture(run.outputdir) == []


def test_matrix_passes_through_the_real_fleet_strategy() -> None:
    run = run_matrix(RESULTS / "matrix-sim-as-real", target="variables/sim-as-real.yaml")
    assert run.failures == {}, "the matrix failed through the real strategy:\n" + "\n".join(
        f"{name}: {message}" for name, message in run.failures.items()
    )
    assert run.passed >= 20, f"only {run.passed} tests ran"


@pytest.mark.parametrize(("fault", "suite"), PAIRS)
def test_fault_turns_its_suite_red(
    fault_runs: dict[tuple[str, str], SuiteRun], fault: str, suite: str
) -> None:
    run = fault_runs[(fault, suite)]
    # --exitonfailure marks the tests after the first failure failed too; those say so.
    real = _real_failures(run)
    readable = {name: message for name, message in real.items() if _readable(fault, message)}
    CATCH_TABLE[(fault, suite)] = (
        f"caught: {next(iter(readable.values()))[:110]}"
        if readable
        else f"NOT CAUGHT ({run.failed} failed)"
    )
    assert real, f"fault {fault} did not turn suite {suite} red"
    # The red test must be one that traces a requirement the fault violates: otherwise the
    # catalogue claims a proof the run does not give.
    wanted = {f"req:{rid}" for rid in VIOLATES.get(fault, set())}
    tracing = [name for name in real if wanted & set(run.tags.get(name, []))]
    assert tracing, (
        f"fault {fault} turned suite {suite} red, but in no test tagged with a requirement it "
        f"violates ({', '.join(sorted(wanted)) or 'none named in docs/requirements.yaml'}): "
        + ", ".join(real)
    )
    assert readable, (
        f"fault {fault} failed suite {suite}, but no failure names a node and the property "
        f"({PROPERTY_WORDS[fault].pattern}):\n" + "\n".join(f"{n}: {m}" for n, m in real.items())
    )


HISTORY_TEST = "The Suite History Holds Every Invariant"
# Faults that violate only history invariants (HIST-*): they break a property between checkpoints.
BETWEEN_CHECKPOINTS = [
    (fault, suite)
    for fault, suite in PAIRS
    if VIOLATES.get(fault) and all(rid.startswith("HIST-") for rid in VIOLATES[fault])
]


@pytest.mark.parametrize(("fault", "suite"), BETWEEN_CHECKPOINTS)
def test_a_fault_between_checkpoints_is_caught_by_the_history_alone(
    fault_runs: dict[tuple[str, str], SuiteRun], fault: str, suite: str
) -> None:
    """Every checkpoint of the suite passes under the fault; only the checker over the whole
    history goes red: what the history adds over checkpoints, proven per fault. Its message
    links the two contradicting records, each in its own artifact."""
    run = fault_runs[(fault, suite)]
    red = _real_failures(run)
    assert [name.rsplit(".", 1)[-1] for name in red] == [HISTORY_TEST], (
        f"fault {fault} should break no checkpoint of {suite}, only the history check; "
        f"red: {sorted(red)}"
    )
    [message] = red.values()
    records = re.search(r"records: (artifacts/.+/history-violations/at-\d+/.+)", message)
    assert records, message
    for link in records.group(1).split(", "):
        assert (run.outputdir / link).is_file(), link


@pytest.mark.parametrize(("fault", "requirement"), REQUIREMENT_PAIRS)
def test_fault_turns_each_requirement_it_violates_red(
    fault_runs: dict[tuple[str, str], SuiteRun], fault: str, requirement: str
) -> None:
    """The catalogue's claim "fault F violates requirement R" is proven by a run: a test tagged
    req:R goes red, naming the node and the property, in one of F's caught_by suites."""
    tag = f"req:{requirement}"
    seen: list[str] = []
    for suite in CATALOGUE[fault].caught_by:
        run = fault_runs[(fault, suite)]
        for name, message in _real_failures(run).items():
            if tag in run.tags.get(name, []):
                if _readable(fault, message):
                    return
                seen.append(f"{name}: {message}")
    raise AssertionError(
        f"fault {fault} violates {requirement} (docs/requirements.yaml), but no run of "
        f"{', '.join(CATALOGUE[fault].caught_by)} turned a test tagged {tag} red naming a node "
        f"and the property ({PROPERTY_WORDS[fault].pattern})"
        + ("; red but unreadable:\n" + "\n".join(seen) if seen else "")
    )
