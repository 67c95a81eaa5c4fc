#!/usr/bin/env python3
"""legion-shim: adapt a Legion CLI's own output to tribes-acceptance's Legion adapter contract.

tribes-acceptance drives Legion through ONE command (``TARGET.real.legion.command``) to which
it appends an operation (``list``, ``init --provider hetzner``, ...). That command must print
the contract's JSON on stdout and exit 0, or print ``{"error": CODE, "message": TEXT}`` and
exit non-zero (see docs/contract.md, "Legion CLI adapter contract"). Your Legion CLI almost
certainly prints something else; this program sits in between:

    tribes-qa  ->  legion_shim.py --native "legionctl --profile prod"  list
                       |  runs:    legionctl --profile prod machine ls --output json
                       |  reads:   {"machines": [{"hostname": ..., "state": "RUNNING", ...}]}
                       '  prints:  [{"name": ..., "status": "ready", ...}]

Python standard library only: copy it next to your deployment and change the three tables
marked ADAPT (the native command per operation, the native status words, the field names).

The native CLI assumed here (a made-up ``legionctl``; replace with yours):

* ``machine ls``                            -> ``{"machines": [MACHINE, ...]}``
* ``machine create --init --cloud P``       -> ``{"machine": MACHINE}``
* ``plan add --cloud P --count N``          -> ``{"planned": [MACHINE, ...]}``
* ``plan apply [--stop-after N]``           -> ``{"run": RUN}``
* ``machine retire|revive|delete NODE``     -> ``{"machine": MACHINE}`` / ``{"deleted": [NODE]}``
* ``machine replace NODE --cloud P``        -> ``{"machine": MACHINE}`` (the replacement)
* ``machine delete --all``                  -> ``{"deleted": [NODE, ...]}``
* ``state export``                          -> ``{"machines": [...], "members": [...], "runs": [...]}``
* every command takes ``--output json``; a failure exits non-zero with ``error[CODE]: message``
  on stderr.

MACHINE is camelCase with its own status words (``RUNNING``, ``RETIRED``, ...) and the SSH
endpoint as one ``user@host:port`` string; RUN and member rows likewise (tables below).

Secrets: only the fields named in the tables are copied, so anything else the native CLI
prints (tokens, keys) never reaches tribes-acceptance's logs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from typing import Any

# --- ADAPT 1: the native command line for each contract operation ---------------------------
# ``{name}`` placeholders are the contract operation's arguments.
NATIVE_COMMANDS = {
    "init": "machine create --init --cloud {provider}",
    "plan": "plan add --cloud {provider} --count {count}",
    "materialize": "plan apply",
    "materialize-interrupted": "plan apply --stop-after {interrupt_after}",
    "decommission": "machine retire {node}",
    "replace": "machine replace {node} --cloud {provider}",
    "reactivate": "machine revive {node}",
    "destroy": "machine delete {node}",
    "destroy-all": "machine delete --all",
    "list": "machine ls",
    "snapshot": "state export",
}
NATIVE_OUTPUT_FLAG = ["--output", "json"]

# --- ADAPT 2: the native status words -> the contract's ----------------------------------------
MACHINE_STATUS = {
    "PENDING": "planned",
    "BOOTING": "provisioning",
    "RUNNING": "ready",
    "RETIRED": "decommissioned",
    "BROKEN": "failed",
    "GONE": "destroyed",
}
RUN_STATE = {
    "QUEUED": "pending",
    "ACTIVE": "running",
    "DONE": "succeeded",
    "ERROR": "failed",
    "STOPPED": "interrupted",
}
MEMBER_STATUS = {"SYNCING": "syncing", "ACTIVE": "active", "RETIRED": "decommissioned"}

# --- ADAPT 3: contract field <- native field (copied as is unless converted below) -------------
MACHINE_FIELDS = {
    "name": "hostname",
    "provider": "cloud",
    "region": "location",
    "admin_url": "adminEndpoint",
    "transport_address": "transportAddress",
    "sync_endpoint": "syncEndpoint",
    "pubkey": "identityPubkey",
    "host_key_fingerprint": "hostKeySha256",
}
RUN_FIELDS = {"id": "runId", "planned": "targets", "materialized": "completed", "error": "failure"}
MEMBER_FIELDS = {
    "node": "machine",
    "node_id": "nodeId",
    "transport_address": "transportAddress",
    "scope": "scope",
    "joined_at": "joinedAt",
    "activated_at": "activatedAt",
    "decommissioned_at": "retiredAt",
}


class ShimError(Exception):
    """Printed as the contract's error JSON: ``{"error": code, "message": message}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- translation: native records -> contract records ------------------------------------------


def _word(table: dict[str, str], value: Any, what: str) -> str:
    if value not in table:
        raise ShimError(
            "invalid-native-output", f"unknown {what} {value!r} (known: {sorted(table)})"
        )
    return table[value]


def _ssh(target: Any) -> dict[str, Any] | None:
    """``"user@host:port"`` -> ``{"host", "port", "user"}`` (null stays null)."""
    if target is None:
        return None
    user, _, host_port = str(target).rpartition("@")
    host, _, port = host_port.rpartition(":")
    if not user or not host or not port.isdigit():
        raise ShimError("invalid-native-output", f"sshTarget {target!r} is not user@host:port")
    return {"host": host, "port": int(port), "user": user}


def machine(native: dict[str, Any]) -> dict[str, Any]:
    """A native MACHINE -> the contract's NodeRecord."""
    record = {field: native.get(source) for field, source in MACHINE_FIELDS.items()}
    record["status"] = _word(MACHINE_STATUS, native.get("state"), "machine state")
    record["ssh"] = _ssh(native.get("sshTarget"))
    return record


def run(native: dict[str, Any]) -> dict[str, Any]:
    """A native RUN -> the contract's GraphRun."""
    record = {field: native.get(source) for field, source in RUN_FIELDS.items()}
    record["materialized"] = record["materialized"] or []
    record["state"] = _word(RUN_STATE, native.get("state"), "run state")
    return record


def member(native: dict[str, Any]) -> dict[str, Any]:
    """A native member row -> the contract's MembershipRecord."""
    record = {field: native.get(source) for field, source in MEMBER_FIELDS.items()}
    record["status"] = _word(MEMBER_STATUS, native.get("memberStatus"), "member status")
    return record


def translate(operation: str, native: Any) -> Any:
    """The contract's JSON for ``operation`` from the native CLI's decoded output."""
    if not isinstance(native, dict):
        raise ShimError(
            "invalid-native-output", f"expected a JSON object, got {type(native).__name__}"
        )
    try:
        if operation == "list":
            return [machine(m) for m in native["machines"]]
        if operation in ("init", "decommission", "replace", "reactivate"):
            return machine(native["machine"])
        if operation == "plan":
            return [machine(m) for m in native["planned"]]
        if operation.startswith("materialize"):
            return run(native["run"])
        if operation in ("destroy", "destroy-all"):
            return {"destroyed": native["deleted"]}  # the runner reads nothing from it
        return {  # snapshot
            "nodes": [machine(m) for m in native["machines"]],
            "clusterMembership": [member(m) for m in native["members"]],
            "graphRuns": [run(r) for r in native["runs"]],
        }
    except (KeyError, TypeError, AttributeError) as error:
        raise ShimError(
            "invalid-native-output", f"{operation}: missing or bad field {error}"
        ) from None


# --- the command line --------------------------------------------------------------------------


def parse_operation(words: list[str]) -> tuple[str, dict[str, Any]]:
    """The contract's operation argv (as the target file's templates append it) -> (name, args)."""
    parser = argparse.ArgumentParser(
        prog="legion_shim.py OPERATION", add_help=False, exit_on_error=False
    )
    parser.add_argument(
        "operation", choices=sorted(set(NATIVE_COMMANDS) - {"materialize-interrupted"})
    )
    parser.add_argument("node", nargs="?")
    parser.add_argument("--provider")
    parser.add_argument("--count", type=int)
    parser.add_argument("--interrupt-after", type=int)
    try:
        args = parser.parse_args(words)
    except (argparse.ArgumentError, SystemExit) as error:
        raise ShimError("usage", f"cannot parse operation {words}: {error}") from None
    name = args.operation
    if name == "materialize" and args.interrupt_after is not None:
        name = "materialize-interrupted"
    return name, {k: v for k, v in vars(args).items() if v is not None and k != "operation"}


def native_argv(base: list[str], operation: str, arguments: dict[str, Any]) -> list[str]:
    words = shlex.split(NATIVE_COMMANDS[operation])
    try:
        filled = [word.format(**arguments) for word in words]
    except KeyError as missing:
        raise ShimError("usage", f"operation {operation} needs {missing}") from None
    return base + filled + NATIVE_OUTPUT_FLAG


def run_native(argv: list[str], timeout_s: float | None) -> Any:
    """Run the native CLI; its failure becomes a ShimError with its own code when it gives one."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise ShimError("native-cli-missing", f"{argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise ShimError("native-cli-timeout", f"no answer after {timeout_s} s") from None
    if done.returncode != 0:
        # The assumed native error line: "error[CODE]: message" on stderr.
        text = (done.stderr or done.stdout).strip()
        head, sep, message = text.partition("]: ")
        if sep and head.startswith("error["):
            raise ShimError(head[len("error[") :], message)
        raise ShimError(f"native-exit-{done.returncode}", text[-400:])
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise ShimError("invalid-native-output", f"not JSON: {done.stdout[:200]!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--native", required=True, help="the native Legion CLI, e.g. 'legionctl --profile prod'"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for it")
    parser.add_argument("operation", nargs=argparse.REMAINDER, help="the contract operation")
    args = parser.parse_args(argv)
    try:
        operation, arguments = parse_operation(args.operation)
        native = run_native(
            native_argv(shlex.split(args.native), operation, arguments), args.timeout
        )
        result = translate(operation, native)
    except ShimError as error:
        sys.stdout.write(json.dumps({"error": error.code, "message": error.message}) + "\n")
        return 1
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
