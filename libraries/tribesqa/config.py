"""Target, roster and timeouts configuration, validated before any node is touched.

A target file (``variables/sim.yaml``, ``variables/sim-as-real.yaml``,
``variables/fleet.example.yaml``) is a Robot Framework YAML variable file whose ``TARGET``
variable describes how to reach a fleet; ``ROSTER`` lists the nodes of the per-node fleet gate.
``variables/timeouts.yaml`` holds the one table of timeouts and poll intervals, with a profile
per kind of target. ``tribes-qa config validate FILE`` runs exactly these models.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tribesqa.contract import ContractError, Provider

VARIABLES_DIR = Path(__file__).resolve().parents[2] / "variables"
DEFAULT_TIMEOUTS_FILE = VARIABLES_DIR / "timeouts.yaml"
_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetKind(StrEnum):
    SIM = "sim"
    REAL = "real"


class PluginTransportKind(StrEnum):
    HTTP = "http"
    SSH = "ssh"


class SecretSource(ConfigModel):
    """Where a secret comes from: an environment variable, else a file. Never the value itself."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretSource:
        if not self.env and not self.file:
            raise ValueError("give env (an environment variable name) or file (a path)")
        return self


class SimSettings(ConfigModel):
    """Settings of the simulated fleet a ``sim`` target starts for each suite."""

    nodes_per_host: Annotated[int, Field(ge=1, le=50)] = 1
    faults: list[str] = []
    fleets_dir: str | None = None  # default: <tmp>/tribes-qa-fleets (never under results/)
    keep_fleet_dirs: bool = False
    # Simulator settings (tribes_sim SimConfig fields, e.g. stage_s) for one suite's fleet, by the
    # suite file's stem: a suite that must observe a job while it runs gets rollout stages as long
    # as a real fleet's. The simulator validates the names and values when the fleet starts.
    suite_settings: dict[str, dict[str, Any]] = {}


def suite_sim_settings(path: Path, suite: str) -> dict[str, Any]:
    """``TARGET.sim.suite_settings[suite]`` of a sim target's variables file (``tribes-qa sim up
    --settings-from``); raises OSError when unreadable, ValueError when invalid."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML: {error}") from None
    target = data.get("TARGET") if isinstance(data, dict) else None
    raw = (target or {}).get("sim") if isinstance(target, dict) else None
    try:
        settings = SimSettings.model_validate(raw or {})
    except ValidationError as error:
        raise ValueError(f"TARGET.sim: {error}") from None
    return dict(settings.suite_settings.get(suite, {}))


def suite_stem(label: str) -> str:
    """The suite file's stem from a suite's (long) name: ``Suites.Management Api Contract`` ->
    ``management_api_contract``."""
    leaf = label.rsplit(".", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "_", leaf.lower()).strip("_")


class LegionCli(ConfigModel):
    """How the real strategy drives Legion: a command that prints JSON, one template per operation.

    ``command`` is the base argv; each operation appends its template's words after the
    placeholders (``{provider}``, ``{count}``, ``{node}``, ``{interrupt_after}``) are filled.
    """

    command: list[str]
    timeout_s: Annotated[float, Field(gt=0)] = 1800
    operations: dict[str, str] = {
        "provision_init": "init --provider {provider}",
        "plan_join": "plan --provider {provider} --count {count}",
        "materialize": "materialize",
        "materialize_interrupted": "materialize --interrupt-after {interrupt_after}",
        "decommission": "decommission {node}",
        "replace": "replace {node} --provider {provider}",
        "reactivate": "reactivate {node}",
        "destroy": "destroy {node}",
        "destroy_all": "destroy-all",
        "list": "list",
        "snapshot": "snapshot",
    }

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value or not all(isinstance(word, str) and word for word in value):
            raise ValueError("command must be a non-empty list of words")
        return value


class FaultCommand(ConfigModel):
    """One fault or heal as a command: run over SSH on the node, or locally (e.g. a Legion CLI)."""

    via: Literal["ssh", "local"] = "ssh"
    command: str

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER_RE.findall(self.command))


# Placeholders are filled by name (``fill_template``), so shell braces such as
# ``${TRIBES_ROOT:-}`` or curl's ``%{http_code}`` need no escaping.
DEFAULT_NODE_COMMANDS = {
    "selected_generation": "p=$(readlink -f ${TRIBES_ROOT:-}/var/guix/profiles/system) && echo ${p#${TRIBES_ROOT:-}}",
    "running_generation": "p=$(readlink -f ${TRIBES_ROOT:-}/run/current-system) && echo ${p#${TRIBES_ROOT:-}}",
    "plugin_request": (
        "curl -sS -w '\\n%{http_code}' -X {method} -H 'content-type: application/json' {data_args} "
        "http://127.0.0.1:${TRIBES_LOCAL_PORT:-4000}/plugins-api/supertest/{path}"
    ),
}


def fill_template(template: str, **values: object) -> str:
    """Replace ``{name}`` for the given names only; everything else is left as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER_RE.sub(replace, template)


class SshSettings(ConfigModel):
    """How the runner logs in to nodes (``TARGET.ssh``). Secrets are never values here: the key
    file's path (``key_file`` or the variable ``key_env``) and its passphrase
    (``key_passphrase_env`` or ``key_passphrase_file``) are read when a connection opens."""

    user: str = "root"
    key_file: str | None = None
    key_env: str | None = None
    key_passphrase_env: str | None = None
    key_passphrase_file: str | None = None
    #: Also offer the keys of a running ssh-agent (``$SSH_AUTH_SOCK``).
    allow_agent: bool = False
    port: int | None = None
    #: Seconds for the TCP connect, the SSH banner, authentication and opening a channel.
    timeout_s: Annotated[float, Field(gt=0)] = 30
    #: OpenSSH's ProxyCommand, e.g. ``tailscale nc %h %p`` (%h host, %p port, %r user, %n node).
    proxy_command: str | None = None
    #: OpenSSH's ProxyJump: one jump host, ``[user@]host[:port]``.
    proxy_jump: str | None = None
    #: An OpenSSH client config file (e.g. ``~/.ssh/config``), looked up by node name, then by
    #: the address Legion reports: HostName, Port, IdentityFile, ProxyCommand, ProxyJump,
    #: UserKnownHostsFile. Opt-in; settings given here win over the file.
    config_file: str | None = None
    #: Checked when Legion records no host key fingerprint (default ``~/.ssh/known_hosts``).
    known_hosts_file: str | None = None
    #: ``strict``: an unknown host key is refused; ``accept-new``: accepted (and added to the
    #: known_hosts file); a key that differs from a known one is always refused.
    host_key_policy: Literal["strict", "accept-new"] = "strict"

    @model_validator(mode="after")
    def _one_route(self) -> SshSettings:
        if self.proxy_command and self.proxy_jump:
            raise ValueError("give proxy_command or proxy_jump, not both")
        if self.proxy_jump and "," in self.proxy_jump:
            raise ValueError("proxy_jump: only one jump host ([user@]host[:port]) is supported")
        if self.key_passphrase_env and self.key_passphrase_file:
            raise ValueError("give key_passphrase_env or key_passphrase_file, not both")
        return self


class RealSettings(ConfigModel):
    """How the real strategy reaches a fleet (also used against the simulator: sim-as-real)."""

    legion: LegionCli
    setup_command: list[str] | None = None
    teardown_command: list[str] | None = None
    faults: dict[str, FaultCommand] = {}
    node_commands: dict[str, str] = DEFAULT_NODE_COMMANDS
    provision_missing_roster_nodes: bool = False

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: dict[str, FaultCommand]) -> dict[str, FaultCommand]:
        unknown = sorted(set(value) - FAULT_OPERATIONS)
        if unknown:
            raise ValueError(
                f"unknown fault operation(s) {unknown}; known: {sorted(FAULT_OPERATIONS)}"
            )
        return value


FAULT_OPERATIONS = frozenset(
    {"partition", "heal", "crash", "restart", "recover", "outage_start", "outage_stop"}
)


class TargetConfig(ConfigModel):
    """The ``TARGET`` variable: which strategy, how to authenticate, how to reach nodes."""

    name: str
    kind: TargetKind
    timeouts_profile: str = "sim"
    plugin_transport: PluginTransportKind = PluginTransportKind.HTTP
    admin_key: SecretSource | None = None
    ssh: SshSettings = SshSettings()
    sim: SimSettings | None = None
    real: RealSettings | None = None
    default_providers: list[Provider] = [Provider.HETZNER, Provider.SCALEWAY, Provider.OVH]

    @model_validator(mode="after")
    def _strategy_settings(self) -> TargetConfig:
        if self.kind is TargetKind.REAL and self.real is None:
            raise ValueError("a real target needs a 'real' section (legion command, faults)")
        if self.kind is TargetKind.REAL and self.admin_key is None:
            raise ValueError("a real target needs 'admin_key' (env and/or file)")
        return self


class RosterEntry(ConfigModel):
    node: Annotated[str, Field(min_length=1)]
    role: Annotated[str, Field(min_length=1)]
    notes: str = ""
    provider: Provider | None = None
    plugins: list[str] = []  # name@commit pins the gate expects installed on the node


class TimeoutProfile(ConfigModel):
    """One column of the timeouts table (seconds)."""

    poll_interval: Annotated[float, Field(gt=0)]
    management_call: Annotated[float, Field(gt=0)]
    node_ready: Annotated[float, Field(gt=0)]
    node_active: Annotated[float, Field(gt=0)]
    membership_converged: Annotated[float, Field(gt=0)]
    rollout: Annotated[float, Field(gt=0)]
    plugin_state_converged: Annotated[float, Field(gt=0)]
    case_visible: Annotated[float, Field(gt=0)]
    stays_stale: Annotated[float, Field(gt=0)]
    legion_operation: Annotated[float, Field(gt=0)]
    ssh_command: Annotated[float, Field(gt=0)]
    #: How far a node's clock may be from the runner's: a node-written timestamp compared with
    #: a runner time ("activated after ${before}") gets this much benefit of the doubt.
    clock_skew: Annotated[float, Field(ge=0)] = 0.0
    #: A wait whose timeout (or window) is at least this long writes progress lines to the
    #: console (start, each change, end); none when the table has no such entry.
    progress_after: Annotated[float, Field(gt=0)] | None = None


class TargetFile(ConfigModel):
    """A whole variables file as ``config validate`` sees it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    TARGET: TargetConfig | None = None
    ROSTER: list[RosterEntry] | None = None
    TIMEOUTS: dict[str, TimeoutProfile] | None = None
    ITERATIONS: Annotated[int, Field(ge=1)] | None = None
    ALLOW_DESTRUCTIVE: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> TargetFile:
        if self.TARGET is None and self.ROSTER is None and self.TIMEOUTS is None:
            raise ValueError("the file defines none of TARGET, ROSTER, TIMEOUTS")
        if self.ROSTER is not None:
            names = [entry.node for entry in self.ROSTER]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"ROSTER lists node(s) twice: {', '.join(duplicates)}")
        return self


class ConfigFileError(Exception):
    """The file is missing or unreadable (exit code 3 of ``config validate``)."""


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, OSError) as error:
        raise ConfigFileError(f"{path}: cannot read: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _yaml_problem(path, error) from None


def _yaml_problem(path: Path, error: yaml.YAMLError) -> ContractError:
    from tribesqa.contract import ContractProblem

    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "?"
    reason = getattr(error, "problem", None) or str(error)
    return ContractError(
        str(path), "YAML", [ContractProblem(path=where, value="", reason=str(reason))]
    )


def validate_target_file(path: Path) -> TargetFile:
    """Load and validate a variables file; raises ConfigFileError or ContractError."""
    from tribesqa.contract import parse_payload

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise _not_a_mapping(path, data)
    return parse_payload(TargetFile, data, source=str(path))


def _not_a_mapping(path: Path, data: Any) -> ContractError:
    from tribesqa.contract import ContractProblem

    return ContractError(
        str(path),
        "TargetFile",
        [
            ContractProblem(
                path="(file)",
                value=repr(data)[:80],
                reason="top level must be a mapping of variables",
            )
        ],
    )


def parse_target(raw: Any, *, source: str = "TARGET") -> TargetConfig:
    from tribesqa.contract import parse_payload

    return parse_payload(TargetConfig, _plain(raw), source=source)


def parse_roster(raw: Any, *, source: str = "ROSTER") -> list[RosterEntry]:
    from tribesqa.contract import parse_payload

    return list(parse_payload(TargetFile, {"ROSTER": _plain(raw)}, source=source).ROSTER or [])


TIMEOUTS_ENV = "TRIBES_QA_TIMEOUTS"
"""Environment variable naming another timeouts table (same format as variables/timeouts.yaml)."""


def timeouts_table_path() -> Path:
    """The timeouts table in use: ``$TRIBES_QA_TIMEOUTS`` when set, else variables/timeouts.yaml."""
    return Path(os.environ.get(TIMEOUTS_ENV) or DEFAULT_TIMEOUTS_FILE)


def load_timeouts(profile: str, path: Path | None = None) -> TimeoutProfile:
    """The column ``profile`` of the timeouts table (:func:`timeouts_table_path` by default)."""
    table_path = path or timeouts_table_path()
    parsed = validate_target_file(table_path)
    table = parsed.TIMEOUTS or {}
    if profile not in table:
        raise ConfigFileError(
            f"{table_path}: no timeouts profile {profile!r} (have: {', '.join(sorted(table))})"
        )
    return table[profile]


def _plain(value: Any) -> Any:
    """Robot's DotDict/NormalizedDict -> plain dicts and lists (pydantic wants plain types)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def validation_problems(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
    ]
