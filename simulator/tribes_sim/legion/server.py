"""The simulated Legion orchestrator: provisions nodes, runs join graphs, pushes membership.

One aiohttp server on loopback; its state lives in ``DIR/legion/state.json``. It spawns node
hosts (``tribes_sim.host``, forked from a pre-imported zygote so a new host costs milliseconds,
not the ~0.7 s of imports), talks to nodes through their NIP-98-protected management API with
its own key, and serves the nemesis. ``tribes-sim-legion`` is its command line (JSON out).

    python -m tribes_sim.legion --dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from tribes_sim.legion.core import Legion
from tribes_sim.legion.http_api import build_app
from tribes_sim.node import set_timestamp_precision
from tribes_sim.settings import SimConfig

log = logging.getLogger("tribes_sim.legion")


async def serve(directory: Path, config: SimConfig, port: int) -> None:
    legion = Legion(directory, config)
    stop = asyncio.Event()
    runner = web.AppRunner(build_app(legion, stop), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    legion.url = f"http://127.0.0.1:{bound}"
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    (directory / "legion.json").write_text(json.dumps({"url": legion.url, "pid": os.getpid()}))
    log.info("legion listening on %s", legion.url)
    # Only now: a tribes_sim.host process appearing still means Legion is up (tests rely on it).
    await legion.start()
    await stop.wait()
    await legion.close()
    await runner.cleanup()
    with contextlib.suppress(FileNotFoundError):
        (directory / "legion.json").unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tribes_sim.legion")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    config = SimConfig.load(args.dir / "sim-config.json")
    set_timestamp_precision(config.timestamp_precision)
    asyncio.run(serve(args.dir, config, args.port))
    return 0
