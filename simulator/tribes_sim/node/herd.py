"""``herd`` on a simulated Guix node: GNU Shepherd's client for the node's ``tribes`` service.

Inside a node's SSH session (``$TRIBES_NODE``, ``$TRIBES_SIM_LEGION``) it drives the one service
a simulated node has through the node's Legion, as Shepherd would drive the daemon:

* ``herd status`` lists the services; ``herd status tribes`` says whether it runs (its
  ``/healthz`` answers);
* ``herd restart tribes`` is the graceful restart Legion's nemesis performs (the node boots
  the selected generation); it returns once the node is healthy again. The node's sshd is not
  part of the service: the session survives, as on a real node;
* ``herd stop tribes`` stops the node gracefully. The simulated node's sshd lives in the same
  process as the node, so the stop is handed to Legion in the background half a second later,
  after this session has reported its exit, and the node's SSH goes with it (on a real node
  sshd stays up);
* ``herd start tribes`` starts a stopped node (a running one: "already running").

Exit status 0 on success, 1 when the action failed, 2 on usage errors (unknown service/action).
"""

from __future__ import annotations

import os
import sys
import time

import httpx

from tribes_sim.fleet import LegionClient, LegionClientError
from tribes_sim.loopback_tls import client_tls_context

#: How long a background stop waits, so the session running `herd stop` ends cleanly first.
STOP_DELAY_S = 0.5
USAGE = "Usage: herd ACTION [SERVICE [ARG...]]  (actions: status start stop restart)"


def _running(client: LegionClient, node: str) -> bool:
    record = next((r for r in client.list_nodes() if r.get("name") == node), None)
    admin_url = (record or {}).get("admin_url")
    if not admin_url:
        return False
    try:
        httpx.get(f"{admin_url}/healthz", timeout=5.0, verify=client_tls_context())
    except httpx.HTTPError:
        return False
    return True


def _detach() -> bool:
    """Fork a child in a session of its own (it outlives this SSH session); True in the child."""
    if os.fork() != 0:
        return False
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    return True


def run(action: str, service: str | None, node: str, client: LegionClient) -> int:
    if action == "status" and service in (None, "root"):
        state = "+" if _running(client, node) else "-"
        print("Started:" if state == "+" else "Stopped:")
        print(f" {state} tribes")
        return 0
    if service != "tribes":
        print(f"herd: error: service '{service}' could not be found", file=sys.stderr)
        return 2
    if action == "status":
        running = _running(client, node)
        print("Status of tribes:")
        print("  It is running." if running else "  It is stopped.")
        print("  It is enabled.")
        print("  Provides: tribes")
        print("  Will be respawned.")
        return 0
    if action == "restart":
        client.nemesis("restart", node=node)
        print("Service tribes has been stopped.")
        print("Service tribes has been started.")
        return 0
    if action == "start":
        if _running(client, node):
            print("Service tribes is already running.")
            return 0
        client.nemesis("restart", node=node)
        print("Service tribes has been started.")
        return 0
    if action == "stop":
        print("Service tribes has been stopped.", flush=True)
        if _detach():
            try:
                # Let this SSH session report its exit status before the stop closes the
                # node's sshd with it.
                time.sleep(STOP_DELAY_S)
                client.nemesis("stop", node=node)
            finally:
                os._exit(0)
        return 0
    print(f"herd: error: service tribes does not have an action '{action}'", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    node = os.environ.get("TRIBES_NODE", "")
    legion_url = os.environ.get("TRIBES_SIM_LEGION", "")
    if not node or not legion_url:
        print(
            "herd: error: not on a simulated node (no TRIBES_NODE/TRIBES_SIM_LEGION)",
            file=sys.stderr,
        )
        return 1
    client = LegionClient(legion_url, timeout_s=120.0)
    try:
        return run(args[0], args[1] if len(args) > 1 else None, node, client)
    except LegionClientError as error:
        print(f"herd: error: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
