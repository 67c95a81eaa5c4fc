"""``tribes-qa``: the command line of tribes-acceptance.

Subcommands: ``sim up | status | down`` manage a simulated fleet in the background;
``config validate`` checks a variables file; ``doctor`` checks a target before a run; ``run`` runs
the suites (robot, or pabot with ``--parallel N`` / ``--gate-per-node``); ``matrix`` writes the
fleet matrix view of an output.xml; ``requirements`` traces the requirement catalogue to tests and
simulator faults; ``timeline`` draws a run's history files again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tribesqa import __version__
from tribesqa.running import run_command

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
    nodes_per_host: Annotated[
        int | None,
        typer.Option(min=1, help="Nodes per host process (default: 1, or 10 above 10 nodes)."),
    ] = None,
    owner_pid: Annotated[
        int | None,
        typer.Option(
            "--owner-pid",
            help="The process that owns the fleet: when it dies unstopped, the fleet and its "
            "directory are removed (by tribes-qa run, or the next fleet started beside it).",
        ),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            "--suite",
            help="Apply this suite's simulator settings (TARGET.sim.suite_settings of --settings-from).",
        ),
    ] = None,
    settings_from: Annotated[
        Path | None,
        typer.Option(
            "--settings-from",
            help="A sim target's variables file holding TARGET.sim.suite_settings.",
        ),
    ] = None,
) -> None:
    """Start Legion plus an N-node cluster in the background; print where the descriptor is."""
    from tribes_sim.fault_catalogue import UnknownFaultError
    from tribes_sim.fleet import FleetError, LegionClientError, start_fleet
    from tribesqa.running.fleet_dirs import sweep_orphan_fleets, write_owner

    if owner_pid is not None:
        # Owned by a robot process: the runner (or a later run) stops and removes the fleet,
        # keys included, when that process dies without stopping it.
        directory = directory.resolve()
        sweep_orphan_fleets(directory.parent)
        write_owner(directory, owner_pid, remove=True)
    overrides: dict[str, Any] = {}
    if settings_from is not None and suite:
        from tribesqa.config import suite_sim_settings

        try:
            overrides = suite_sim_settings(settings_from, suite)
        except OSError as error:
            typer.echo(f"tribes-qa sim up: {settings_from}: unreadable: {error}", err=True)
            raise typer.Exit(3) from None
        except ValueError as error:
            typer.echo(f"tribes-qa sim up: {settings_from}: {error}", err=True)
            raise typer.Exit(1) from None
    try:
        descriptor = start_fleet(
            directory,
            nodes=nodes,
            faults=[f for f in faults.split(",") if f.strip()],
            **({"nodes_per_host": nodes_per_host} if nodes_per_host else {}),
            **overrides,
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
    remove: Annotated[
        bool,
        typer.Option("--remove", help="Also delete the fleet directory (it holds the keys)."),
    ] = False,
) -> None:
    """Stop Legion and every node; leave no process behind (and, with --remove, no file)."""
    from tribes_sim.fleet import stop_fleet
    from tribesqa.running.fleet_dirs import remove_fleet_dir

    directory = directory.resolve()
    was_running = stop_fleet(directory)
    typer.echo("stopped" if was_running else "no fleet was running")
    if remove:
        try:
            removed = remove_fleet_dir(directory)
        except ValueError as error:
            typer.echo(f"tribes-qa sim down: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"removed {directory}" if removed else f"no directory {directory}")


config_app = typer.Typer(help="Check target, roster and timeouts files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3


def _print_problems(file: Path, error: Any) -> None:
    """One line per invalid field, with its path (exit code 1 of config validate and run)."""
    typer.echo(f"{file}: invalid ({len(error.problems)} problem(s))", err=True)
    for problem in error.problems:
        typer.echo(f"  {problem.path}: {problem.reason} (value: {problem.value})", err=True)


@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="A variables file (TARGET / ROSTER / TIMEOUTS).")],
) -> None:
    """Validate a target/roster/timeouts file with the models, before touching any node.

    Exit codes: 0 valid, 1 invalid content (each problem with its field path), 2 usage error,
    3 file missing or unreadable.
    """
    from tribesqa.config import ConfigFileError, validate_target_file
    from tribesqa.contract import ContractError

    try:
        parsed = validate_target_file(file)
    except ConfigFileError as error:
        typer.echo(f"tribes-qa config validate: {error}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    except ContractError as error:
        _print_problems(file, error)
        raise typer.Exit(EXIT_INVALID) from None
    parts = []
    if parsed.TARGET is not None:
        parts.append(f"target {parsed.TARGET.name} ({parsed.TARGET.kind.value})")
    if parsed.ROSTER is not None:
        parts.append(f"roster of {len(parsed.ROSTER)} node(s)")
    if parsed.TIMEOUTS is not None:
        parts.append(f"timeouts profiles {', '.join(sorted(parsed.TIMEOUTS))}")
    typer.echo(f"{file}: valid: {'; '.join(parts)}")


@app.command("doctor")
def doctor(
    target: Annotated[
        Path, typer.Option("--target", "-t", help="The target variables file to check.")
    ],
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show what every passing check saw.")
    ] = False,
) -> None:
    """Check a target before a run: config, Legion, keys, and per node /healthz, a signed
    node.info, SSH, clock skew and the plugin transport. Read-only (a setup_command runs first,
    its teardown_command after). Never prints a secret.

    Exit codes: 0 every check passed, 1 a check failed (node and check named), 2 usage error,
    3 file missing or unreadable.
    """
    from tribesqa.config import ConfigFileError
    from tribesqa.running.doctor import diagnose
    from tribesqa.running.doctor_view import render

    try:
        report = diagnose(target)
    except ConfigFileError as error:
        typer.echo(f"tribes-qa doctor: {error}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    typer.echo(render(report, verbose=verbose), nl=False)
    raise typer.Exit(report.exit_code)


app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    run_command.run
)


@app.command("matrix")
def matrix(
    output_xml: Annotated[Path, typer.Argument(help="A robot/pabot/rebot output.xml.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Page to write (default: fleet-matrix.html beside it)."
        ),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="log.html the cells link to (default: log.html beside it)."),
    ] = None,
) -> None:
    """Write the fleet matrix (nodes x scenarios, each cell linked to log.html) for OUTPUT_XML."""
    from robot.errors import DataError

    from tribesqa.reporting.fleet_matrix import write_fleet_matrix

    if not output_xml.is_file():
        typer.echo(f"tribes-qa matrix: {output_xml}: no such file", err=True)
        raise typer.Exit(EXIT_UNREADABLE)
    page = output if output is not None else output_xml.parent / "fleet-matrix.html"
    try:
        written = write_fleet_matrix(output_xml, page, log)
    except DataError as error:
        typer.echo(f"tribes-qa matrix: {output_xml}: {error}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    typer.echo(f"Fleet matrix: {written}")


@app.command("timeline")
def timeline(
    outputdir: Annotated[
        Path, typer.Argument(help="A run's output directory (artifacts/*/history.jsonl).")
    ] = Path("results"),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Page to write (default: OUTPUTDIR/timeline.html)."),
    ] = None,
) -> None:
    """Write the timeline page (a picture per test) from a run's history files.

    Failed tests get their failure line from OUTPUTDIR/output.xml when it is there. Exit codes:
    0 written, 3 no history file under OUTPUTDIR/artifacts.
    """
    from tribesqa.reporting.timeline_page import write_timeline_page

    output_xml = outputdir / "output.xml"
    page = write_timeline_page(outputdir, output, output_xml if output_xml.is_file() else None)
    if page is None:
        typer.echo(f"tribes-qa timeline: no history file under {outputdir / 'artifacts'}", err=True)
        raise typer.Exit(EXIT_UNREADABLE)
    typer.echo(f"Timeline: {page}")


@app.command("requirements")
def requirements(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Also write the traceability page (HTML) here (default with --results: "
            "requirements.html beside the output.xml).",
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="A run's output.xml: the page shows each requirement's result in that run.",
        ),
    ] = None,
    catalogue: Annotated[
        Path, typer.Option("--catalogue", help="The requirement catalogue.")
    ] = Path("docs/requirements.yaml"),
    suites: Annotated[Path, typer.Option("--suites", help="Robot suites (req:<ID> tags).")] = Path(
        "suites"
    ),
    tests: Annotated[
        Path, typer.Option("--tests", help='pytest tests (@pytest.mark.req("ID")).')
    ] = Path("tests"),
) -> None:
    """Print requirement -> tests -> faults; fail when a requirement is unproven.

    Reads the catalogue, the suites' req:<ID> tags (Robot's model API, nothing runs), the
    tests' pytest.mark.req ids and the simulator's fault catalogue. Exit codes: 0 every
    requirement traced, 1 problems (each listed), 2 usage error, 3 catalogue (or --results
    file) missing or unreadable.
    """
    from robot.errors import DataError

    from tribesqa.reporting.requirements_page import write_requirements_page
    from tribesqa.running.requirements import CatalogueMissingError, build_report, format_table

    if results is not None:
        if not results.is_file():
            typer.echo(f"tribes-qa requirements: {results}: no such file", err=True)
            raise typer.Exit(EXIT_UNREADABLE)
        if output is None:
            output = results.parent / "requirements.html"
    try:
        report = build_report(catalogue, suites, tests)
    except CatalogueMissingError as error:
        typer.echo(f"tribes-qa requirements: {error}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    typer.echo(format_table(report))
    if output is not None:
        try:
            written = write_requirements_page(report, output, results)
        except DataError as error:
            typer.echo(f"tribes-qa requirements: {results}: {error}", err=True)
            raise typer.Exit(EXIT_INVALID) from None
        typer.echo(f"Requirements page: {written}")
    if report.problems:
        typer.echo(f"{report.catalogue}: {len(report.problems)} problem(s)", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_INVALID)
