"""``tribes-qa``: the command line of tribes-acceptance.

Subcommands: ``sim up | status | down`` manage a simulated fleet in the background.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tribesqa import __version__

app = typer.Typer(
    name="tribes-qa",
    help="Acceptance tooling for Tribes clusters: simulated fleet, runs, config checks.",
    no_args_is_help=True,
    add_completion=False,
)
sim_app = typer.Typer(
    help="Run the simulated Tribes fleet in the background.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")

DEFAULT_SIM_DIR = Path("sim")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tribes-qa {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Acceptance tooling for Tribes clusters."""


@sim_app.command("up")
def sim_up(
    nodes: Annotated[
        int, typer.Option("--nodes", "-n", min=0, max=100, help="Nodes to start.")
    ] = 3,
    directory: Annotated[Path, typer.Option("--dir", help="Fleet directory.")] = DEFAULT_SIM_DIR,
    faults: Annotated[
        str, typer.Option("--faults", help="Catalogue faults to switch on, a,b.")
    ] = "",
    nodes_per_host: Annotated[int, typer.Option(min=1, help="Nodes per host process.")] = 1,
) -> None:
    """Start Legion plus an N-node cluster in the background; print where the descriptor is."""
    from tribes_sim.faults import UnknownFaultError
    from tribes_sim.fleet import FleetError, LegionClientError, start_fleet

    try:
        descriptor = start_fleet(
            directory,
            nodes=nodes,
            faults=[f for f in faults.split(",") if f.strip()],
            nodes_per_host=nodes_per_host,
        )
    except (FleetError, LegionClientError, UnknownFaultError) as error:
        typer.echo(f"tribes-qa sim up: {error}", err=True)
        raise typer.Exit(1) from None
    fleet_file = Path(descriptor["fleet_dir"]) / "fleet.json"
    typer.echo(f"Legion: {descriptor['legion_url']}")
    for node in descriptor["nodes"]:
        typer.echo(
            f"  {node['name']:<12} {node['status']:<10} admin {node['admin_url']}  "
            f"sync {node['transport_address']}  ssh {node['ssh']['host']}:{node['ssh']['port']}"
        )
    typer.echo(f"Fleet descriptor: {fleet_file}")
    typer.echo(f"Stop it with: tribes-qa sim down --dir {directory}")


@sim_app.command("status")
def sim_status(
    directory: Annotated[Path, typer.Option("--dir", help="Fleet directory.")] = DEFAULT_SIM_DIR,
) -> None:
    """Print the fleet's state as JSON (exit 1 when it is not running)."""
    from tribes_sim.fleet import fleet_status

    status = fleet_status(directory.resolve())
    typer.echo(json.dumps(status, indent=1))
    if not status["running"]:
        raise typer.Exit(1)


@sim_app.command("down")
def sim_down(
    directory: Annotated[Path, typer.Option("--dir", help="Fleet directory.")] = DEFAULT_SIM_DIR,
) -> None:
    """Stop Legion and every node; leave no process behind."""
    from tribes_sim.fleet import stop_fleet

    was_running = stop_fleet(directory.resolve())
    typer.echo("stopped" if was_running else "no fleet was running")
