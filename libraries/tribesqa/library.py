"""TribesLibrary: the one keyword library of tribes-acceptance.

Built on robotframework-pythonlibcore's ``DynamicCore`` from small components that share a
``LibraryContext`` (the shape of SeleniumLibrary and Browser). The library is also its own
listener: it learns suite/test names for artifact paths, captures a cluster snapshot when a
test step fails, and runs every registered heal at the end of a test and suite.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from robot.api import SkipExecution, logger
from robot.errors import ExecutionStatus
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robotlibcore import DynamicCore

from tribesqa import __version__, guard
from tribesqa.console_progress import progress_factory
from tribesqa.context import LibraryContext
from tribesqa.diagnostics import clean_failure
from tribesqa.keywords.artifact_keywords import ArtifactKeywords
from tribesqa.keywords.contract_keywords import ContractKeywords
from tribesqa.keywords.convergence_keywords import ConvergenceKeywords
from tribesqa.keywords.decommissioned_keywords import DecommissionedKeywords
from tribesqa.keywords.fault_keywords import FaultKeywords
from tribesqa.keywords.gate_keywords import GateKeywords
from tribesqa.keywords.generation_keywords import GenerationKeywords
from tribesqa.keywords.history_keywords import HistoryKeywords
from tribesqa.keywords.http_keywords import HttpKeywords
from tribesqa.keywords.legion_keywords import LegionKeywords
from tribesqa.keywords.lifecycle_keywords import LifecycleKeywords
from tribesqa.keywords.mesh_keywords import MeshKeywords
from tribesqa.keywords.node_keywords import NodeKeywords
from tribesqa.keywords.plugin_keywords import PluginKeywords
from tribesqa.keywords.plugin_state_keywords import PluginStateKeywords
from tribesqa.keywords.scenario_keywords import ScenarioKeywords
from tribesqa.keywords.security_keywords import SecurityKeywords
from tribesqa.keywords.ssh_keywords import SshKeywords
from tribesqa.keywords.target_keywords import TargetKeywords
from tribesqa.reporting.timeline_page import timeline_of_test
from tribesqa.waiting.progress import set_progress_factory


def refuse_duplicate_keywords(components: list[Any]) -> None:
    """Two components defining one keyword name would let the later one replace the earlier one
    silently (PythonLibCore keeps the last): refuse at import, naming both."""
    owners: dict[str, list[str]] = {}
    for component in components:
        for attribute in dir(type(component)):
            method = getattr(type(component), attribute, None)
            if callable(method) and hasattr(method, "robot_name"):
                name = method.robot_name or attribute
                key = name.replace("_", " ").replace(" ", "").lower()
                owners.setdefault(key, []).append(f"{type(component).__name__}.{attribute}")
    clashes = {key: who for key, who in owners.items() if len(who) > 1}
    if clashes:
        raise ValueError(
            "keywords defined by more than one component: "
            + "; ".join(" and ".join(who) for who in clashes.values())
        )


class TribesLibrary(DynamicCore):
    """Keywords that provision, drive, break and check a Tribes cluster.

    The same keywords run against the simulated fleet (default) and a real fleet; the
    ``TARGET`` variable (``variables/sim.yaml``, ``variables/fleet.example.yaml``) picks the
    strategy, never the suite.

    Results are typed contract models, usable in Robot as ``${status.self_status}``. Waits poll
    every node concurrently, fail fast on terminal states, and on failure log ONE message plus
    ONE table of rows x nodes with the differing cells marked.

    Example:
    | Open Target
    | ${init}=    Provision Init Node    hetzner
    | Wait Until Node Is Active Everywhere    ${init.name}
    | [Teardown]    Close Target
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self) -> None:
        # Robot records Python logging in log.html; per-request lines from the HTTP and SSH
        # clients would bury the one message that matters.
        for noisy in ("httpx", "httpcore", "paramiko"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.ctx = LibraryContext()
        self._test_started: float | None = None  # time.monotonic() of the running test's start
        self._failed_at: float | None = None  # ... and of its first failing keyword's end
        # Long waits say how they are going on the console (console_progress.py).
        set_progress_factory(progress_factory(self._progress_after))
        self.ROBOT_LIBRARY_LISTENER = self
        components: list[Any] = [
            TargetKeywords(self.ctx),
            LegionKeywords(self.ctx),
            NodeKeywords(self.ctx),
            GenerationKeywords(self.ctx),
            ContractKeywords(self.ctx),
            DecommissionedKeywords(self.ctx),
            PluginKeywords(self.ctx),
            ConvergenceKeywords(self.ctx),
            LifecycleKeywords(self.ctx),
            MeshKeywords(self.ctx),
            PluginStateKeywords(self.ctx),
            ArtifactKeywords(self.ctx),
            FaultKeywords(self.ctx),
            ScenarioKeywords(self.ctx),
            GateKeywords(self.ctx),
            SshKeywords(self.ctx),
            SecurityKeywords(self.ctx),
            HttpKeywords(self.ctx),
            HistoryKeywords(self.ctx),
        ]
        self.history_keywords = components[-1]
        self.components = components
        refuse_duplicate_keywords(components)
        super().__init__(components)

    def _progress_after(self) -> float | None:
        """The open target's ``progress_after`` (None: no target open, or no such entry)."""
        timeouts = self.ctx.timeouts if self.ctx.target is not None else None
        return timeouts.progress_after if timeouts is not None else None

    def get_keyword_tags(self, name: str) -> list[str]:
        """The keyword's own tags plus its component's domain tags (``Component.TAGS``), and
        ``destructive`` for a keyword marked ``@destructive`` (the production guard, guard.py)."""
        method = self.keywords[name]
        component = getattr(method, "__self__", None)
        guarded = [guard.TAG] if getattr(method, "tribes_destructive", None) else []
        return sorted({*super().get_keyword_tags(name), *getattr(component, "TAGS", ()), *guarded})

    def run_keyword(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> Any:
        try:
            return super().run_keyword(name, args, kwargs)
        except (ExecutionStatus, SkipExecution):
            raise  # Robot's own outcomes (a skip, a nested keyword's failure) pass through as they are
        except Exception as error:  # one place turns every library error into a clean failure
            raise clean_failure(error) from None

    # -- listener ------------------------------------------------------------------------------
    def _start_suite(self, data: Any, result: Any) -> None:
        self.ctx.labels.suite = result.full_name
        for component in self.components:
            hook = getattr(component, "on_suite_start", None)
            if hook:
                hook()
        try:
            output_dir = BuiltIn().get_variable_value("${OUTPUT DIR}")
        except RobotNotRunningError:
            output_dir = None
        if output_dir:
            self.ctx.labels.output_dir = Path(output_dir)
        if self.ctx.history.current is not None:
            self.ctx.history.current.path = self.history_keywords.history_path()

    def _start_test(self, data: Any, result: Any) -> None:
        self.ctx.labels.test = result.name
        self._test_started = time.monotonic()
        self._failed_at: float | None = None
        self.ctx.history.test = result.full_name
        for component in self.components:
            hook = getattr(component, "on_test_start", None)
            if hook:
                hook()

    def _end_test(self, data: Any, result: Any) -> None:
        for component in self.components:
            hook = getattr(component, "on_test_end", None)
            if hook:
                hook(result)
        for problem in self.ctx.run_heals(test_only=True):
            logger.warn(f"{result.name}: {problem}")
        self.ctx.history.flush()  # after the heals (they belong to the test), before the picture
        self._log_timeline(result)
        self.ctx.labels.test = None
        self.ctx.history.test = None

    def _log_timeline(self, result: Any) -> None:
        """The test's timeline picture (from its suite's history.jsonl) into log.html."""
        failed = getattr(result, "status", "") == "FAIL"
        try:
            svg = timeline_of_test(
                self.ctx.labels.output_dir,
                self.ctx.labels.suite,
                result.full_name,
                started=self._test_started,
                failed_at=(self._failed_at or time.monotonic()) if failed else None,
                message=getattr(result, "message", ""),
                # The history is on and this suite's is open: a test with no record truly
                # touched nothing, and its picture says so (every test has a picture).
                draw_empty=self.ctx.history.enabled and self.ctx.history.current is not None,
            )
        except Exception as error:  # a picture never changes a verdict
            logger.warn(f"{result.full_name}: timeline not drawn: {error}")
            return
        if svg is not None:
            logger.info(f'<div class="tribes-timeline">{svg}</div>', html=True)

    def _end_suite(self, data: Any, result: Any) -> None:
        if data.parent is None or self.ctx.target is not None:
            for problem in self.ctx.run_heals():
                logger.warn(f"{result.full_name}: {problem}")
        self.history_keywords.on_suite_end()

    def _end_keyword(self, data: Any, result: Any) -> None:
        if (
            getattr(result, "status", "") == "FAIL"
            and self.ctx.labels.test
            and self._failed_at is None
        ):
            self._failed_at = time.monotonic()  # the innermost failing keyword ends first
        for component in self.components:
            hook = getattr(component, "on_keyword_end", None)
            if hook:
                hook(data, result)

    # Robot looks listener methods up by these names.
    start_suite = _start_suite
    start_test = _start_test
    end_test = _end_test
    end_suite = _end_suite
    end_keyword = _end_keyword
