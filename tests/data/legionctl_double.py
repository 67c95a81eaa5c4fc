"""A stand-in for a "native" Legion CLI (the made-up ``legionctl`` of examples/legion-shim).

Runs the simulator's ``tribes-sim-legion`` (which prints the contract's JSON) and rewrites its
answer into legionctl's own shape (camelCase, its status words, ``user@host:port``, errors as
``error[CODE]: message`` on stderr), so the shim can be tested against a running simulator:
``legion_shim.py --native "python legionctl_double.py --dir FLEET" list``.

Usage: ``legionctl_double.py --dir FLEET <legionctl command> --output json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

MACHINE_STATE = {
    "planned": "PENDING",
    "provisioning": "BOOTING",
    "ready": "RUNNING",
    "decommissioned": "RETIRED",
    "failed": "BROKEN",
    "destroyed": "GONE",
}
RUN_STATE = {
    "pending": "QUEUED",
    "running": "ACTIVE",
    "succeeded": "DONE",
    "failed": "ERROR",
    "interrupted": "STOPPED",
}
MEMBER_STATUS = {"syncing": "SYNCING", "active": "ACTIVE", "decommissioned": "RETIRED"}


def machine(record: dict[str, Any]) -> dict[str, Any]:
    ssh = record.get("ssh")
    return {
        "hostname": record["name"],
        "cloud": record["provider"],
        "location": record["region"],
        "state": MACHINE_STATE[record["status"]],
        "adminEndpoint": record.get("admin_url"),
        "transportAddress": record.get("transport_address"),
        "syncEndpoint": record.get("sync_endpoint"),
        "sshTarget": f"{ssh['user']}@{ssh['host']}:{ssh['port']}" if ssh else None,
        "identityPubkey": record.get("pubkey"),
        "hostKeySha256": record.get("host_key_fingerprint"),
        "apiToken": "legionctl-session-token-must-not-leak",  # the shim must drop it
    }


def run(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "runId": record["id"],
        "state": RUN_STATE[record["state"]],
        "targets": record["planned"],
        "completed": record.get("materialized", []),
        "failure": record.get("error"),
    }


def member(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": record["node"],
        "nodeId": record["node_id"],
        "memberStatus": MEMBER_STATUS[record["status"]],
        "transportAddress": record["transport_address"],
        "scope": record["scope"],
        "joinedAt": record["joined_at"],
        "activatedAt": record["activated_at"],
        "retiredAt": record["decommissioned_at"],
    }


def sim_words(words: list[str]) -> tuple[list[str], str]:
    """legionctl's command -> (tribes-sim-legion's operation words, the answer's shape)."""
    value = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
    match words:
        case ["machine", "ls", *_]:
            return ["list"], "machines"
        case ["machine", "create", "--init", *_]:
            return ["init", "--provider", value["--cloud"]], "machine"
        case ["plan", "add", *_]:
            return ["plan", "--provider", value["--cloud"], "--count", value["--count"]], "planned"
        case ["plan", "apply", *_]:
            stop = ["--interrupt-after", value["--stop-after"]] if "--stop-after" in value else []
            return ["materialize", *stop], "run"
        case ["machine", "retire", node, *_]:
            return ["decommission", node], "machine"
        case ["machine", "revive", node, *_]:
            return ["reactivate", node], "machine"
        case ["machine", "replace", node, *_]:
            return ["replace", node, "--provider", value["--cloud"]], "machine"
        case ["machine", "delete", "--all", *_]:
            return ["destroy-all"], "deleted"
        case ["machine", "delete", node, *_]:
            return ["destroy", node], "deleted"
        case ["state", "export", *_]:
            return ["snapshot"], "state"
    raise SystemExit(f"legionctl: unknown command {words}")


def main() -> int:
    args = sys.argv[1:]
    if args[:1] != ["--dir"] or args[-2:] != ["--output", "json"]:
        sys.stderr.write("usage: legionctl_double.py --dir FLEET COMMAND... --output json\n")
        return 2
    operation, shape = sim_words(args[2:-2])
    done = subprocess.run(
        ["tribes-sim-legion", "--dir", args[1], *operation],
        capture_output=True,
        text=True,
        check=False,
    )
    answer = json.loads(done.stdout) if done.stdout.strip() else None
    if done.returncode != 0:
        error = answer if isinstance(answer, dict) else {"error": "exit", "message": done.stderr}
        sys.stderr.write(f"error[{error['error']}]: {error['message']}\n")
        return 3
    if shape == "machines":
        native: Any = {"machines": [machine(r) for r in answer]}
    elif shape == "machine":
        native = {"machine": machine(answer)}
    elif shape == "planned":
        native = {"planned": [machine(r) for r in answer]}
    elif shape == "run":
        native = {"run": run(answer)}
    elif shape == "deleted":
        destroyed = answer.get("destroyed")
        native = {"deleted": destroyed if isinstance(destroyed, list) else [destroyed]}
    else:
        native = {
            "machines": [machine(r) for r in answer["nodes"]],
            "members": [member(r) for r in answer["clusterMembership"]],
            "runs": [run(r) for r in answer["graphRuns"]],
        }
    sys.stdout.write(json.dumps(native) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
