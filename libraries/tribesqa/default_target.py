"""The embedded default target: plain ``robot suites/`` runs against the simulator.

With no ``${TARGET}`` (no ``--variablefile``), the variables of ``variables/sim.yaml`` are set
as global variables, which Robot documents as "the same effect as creating them from the
command line": the run is exactly one with ``--variablefile variables/sim.yaml``. A variable
the command line did give (``--variable ITERATIONS:3``) is kept. An explicit target always wins:
nothing here runs when ``${TARGET}`` exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn

from tribesqa.diagnostics import TribesFailure

# The checkout's own default, next to the suites: libraries/tribesqa/ -> <repo>/variables/.
DEFAULT_VARIABLES = Path(__file__).resolve().parents[2] / "variables" / "sim.yaml"


def _given_on_command_line(builtin: BuiltIn, name: str) -> bool:
    """Was ``${name}`` set by ``--variable``/``--variablefile`` (or already by this module)?

    Robot keeps command-line variables in its global scope and offers no public reader of that
    scope alone; ``Get Variable Value`` would also see the suite's own Variables table.
    """
    scopes = getattr(builtin, "_variables", None)
    global_scope = getattr(scopes, "_global", None)
    if global_scope is None:
        return builtin.get_variable_value(f"${{{name}}}") is not None
    return name in global_scope  # the store keys variables by their bare names


def load_default_variables(path: Path = DEFAULT_VARIABLES) -> dict[str, Any]:
    """The default variables file as a mapping; a clear failure when it is missing or broken."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TribesFailure(
            f"no target given (no --variablefile) and the default {path} cannot be read "
            f"({error.strerror}): pass --variablefile variables/sim.yaml or another target file"
        ) from None
    except yaml.YAMLError as error:
        raise TribesFailure(f"default target {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict) or "TARGET" not in data:
        raise TribesFailure(f"default target {path} has no TARGET")
    return data


def target_origin(builtin: BuiltIn | None = None) -> str:
    """Where ``${TARGET}`` came from, for the log."""
    builtin = builtin or BuiltIn()
    if _given_on_command_line(builtin, "TARGET"):
        return "target from the command line (--variablefile/--variable)"
    return "target from the suite's own variables"


def ensure_target_variables(builtin: BuiltIn | None = None) -> str | None:
    """Set the default target's variables when ``${TARGET}`` is missing.

    Returns the log line saying so, or None when a target was given (nothing was changed).
    """
    builtin = builtin or BuiltIn()
    if builtin.get_variable_value("${TARGET}") is not None:
        return None
    data = load_default_variables()
    kept = []
    for name, value in data.items():
        if _given_on_command_line(builtin, name):
            kept.append(name)
            continue
        builtin.set_global_variable(f"${{{name}}}", value)
    note = f" (kept from the command line: {', '.join(kept)})" if kept else ""
    line = (
        f"no TARGET given (no --variablefile): using the default target, the simulated fleet "
        f"of {DEFAULT_VARIABLES}, exactly as --variablefile variables/sim.yaml{note}"
    )
    logger.console(f"tribes-qa: {line}")
    return line
