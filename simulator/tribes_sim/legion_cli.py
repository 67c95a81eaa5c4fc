"""``tribes-sim-legion``: the simulated Legion's operations as a command line that prints JSON.

Real Legion is driven through CLI wrappers that print JSON; this is the same shape for the
simulator, so the real-fleet target strategy can be exercised against it. Exit codes: 0 success
(JSON result on stdout), 1 the operation was refused or failed (JSON error on stdout), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tribes_sim.fleet import LegionClient, LegionClientError, legion_info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tribes-sim-legion", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--legion-url", default=os.environ.get("TRIBES_SIM_LEGION"))
    where.add_argument("--dir", type=Path, help="fleet directory (reads legion.json)")
    ops = parser.add_subparsers(dest="operation", required=True)
    init = ops.add_parser("init", help="provision the init node")
    init.add_argument("--provider", required=True)
    plan = ops.add_parser("plan", help="plan join nodes")
    plan.add_argument("--provider", required=True)
    plan.add_argument("--count", type=int, default=1)
    materialize = ops.add_parser("materialize", help="materialize planned nodes in one graph run")
    materialize.add_argument("--interrupt-after", type=int, default=None)
    for name in ("decommission", "reactivate", "destroy"):
        ops.add_parser(name).add_argument("node")
    replace = ops.add_parser("replace")
    replace.add_argument("node")
    replace.add_argument("--provider", required=True)
    ops.add_parser("destroy-all")
    ops.add_parser("list")
    ops.add_parser("snapshot")
    nemesis = ops.add_parser("nemesis", help="inject or heal a fault")
    actions = nemesis.add_subparsers(dest="action", required=True)
    partition = actions.add_parser("partition")
    partition.add_argument("node")
    partition.add_argument("--peers", default="", help="comma-separated node names (default: all)")
    actions.add_parser("heal")
    for name in ("crash", "restart", "stop"):
        actions.add_parser(name).add_argument("node")
    outage = actions.add_parser("outage")
    outage.add_argument("node")
    outage.add_argument("state", choices=("on", "off"))
    skew = actions.add_parser("clock-skew")
    skew.add_argument("node")
    skew.add_argument("seconds", type=float)
    return parser


def run(args: argparse.Namespace, client: LegionClient) -> Any:
    operation = args.operation
    if operation == "init":
        return client.provision_init(args.provider)
    if operation == "plan":
        return client.plan_join(args.provider, args.count)
    if operation == "materialize":
        return client.materialize(args.interrupt_after)
    if operation == "decommission":
        return client.decommission(args.node)
    if operation == "reactivate":
        return client.reactivate(args.node)
    if operation == "destroy":
        return client.destroy(args.node)
    if operation == "replace":
        return client.replace(args.node, args.provider)
    if operation == "destroy-all":
        return client.destroy_all()
    if operation == "list":
        return client.list_nodes()
    if operation == "snapshot":
        return client.snapshot()
    action = args.action
    if action == "partition":
        peers = [p for p in args.peers.split(",") if p]
        return client.nemesis("partition", node=args.node, peers=peers or None)
    if action == "heal":
        return client.nemesis("heal")
    if action in ("crash", "restart", "stop"):
        return client.nemesis(action, node=args.node)
    if action == "outage":
        return client.nemesis("outage", node=args.node, active=args.state == "on")
    return client.nemesis("clock-skew", node=args.node, seconds=args.seconds)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    url = args.legion_url
    if url is None and args.dir is not None:
        info = legion_info(args.dir)
        url = info["url"] if info else None
    if not url:
        parser.error("no Legion: pass --legion-url, --dir, or set TRIBES_SIM_LEGION")
    client = LegionClient(url)
    try:
        result = run(args, client)
    except LegionClientError as error:
        error_body = {
            "ok": False,
            "error": error.code,
            "message": error.message,
            "operation": error.operation,
        }
        sys.stdout.write(json.dumps(error_body) + "\n")
        return 1
    finally:
        client.close()
    sys.stdout.write(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
