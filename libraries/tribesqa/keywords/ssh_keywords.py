"""Commands on a node over SSH (ad-hoc, generation links), on the library's one pinned
connection per node."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.clients.ssh_client import CommandResult, SshCommandError
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.component import Component
from tribesqa.reporting.snapshot import SecretScrubber

_LOGGED_OUTPUT_CHARS = 4000
_RECORDED_COMMAND_CHARS = 200
# The run history's names for what these keywords do on a node (the recorder's format).
LINKS_WHAT = "ssh.generation_links"


class SshKeywords(Component):
    TAGS = ("ssh", "node")  # keyword tags in libdoc: this component's domain

    @keyword
    def run_command_on_node(self, node: str, command: str) -> CommandResult:
        """Run ``command`` with ``/bin/sh -c`` on ``node`` over SSH; return its result.

        The command runs on an exec channel of the library's SSH connection to that node (one
        per node, opened on first use, host key checked against the fingerprint Legion
        recorded or known_hosts, closed by `Close Target`), as the target's SSH user (root
        works) with the target's key, route and agent (``TARGET.ssh``). Nothing is matched
        against a prompt; stdin is empty.

        Returns an object with ``stdout`` and ``stderr`` (text, nothing stripped) and ``rc``
        (the exit status; negative when the command was killed by a signal), plus ``node``.
        A non-zero ``rc`` is returned, not failed: check it. The keyword fails, naming the
        node, when the node is unknown to Legion, has no SSH endpoint, refuses the login or
        presents another host key, or the command outlives ``ssh_command`` (timeouts profile).

        The log shows the command, the exit status and the output (admin and SSH key
        material redacted); the key itself is never logged.

        Example:
        | ${result}=    Run Command On Node    hetzner-1    readlink /run/current-system
        | Should Be Equal As Integers    ${result.rc}    0
        | Should Contain    ${result.stdout}    /gnu/store/
        | ${tables}=    Run Command On Node    hetzner-1    sqlite3 $TRIBES_ROOT/../node.db .tables
        | Should Not Contain    ${tables.stdout}    supertest_cases
        """
        name = str(node)
        try:
            endpoint = self.ctx.ssh_endpoint(name)
            # Any command may change the node: an operation in the run history (scrubbed).
            params = {"command": str(command)[:_RECORDED_COMMAND_CHARS]}
            with self.ctx.history.operation(name, "ssh.command", params) as out:
                result = self.ctx.ssh().run(name, endpoint, str(command), purpose="ad-hoc command")
                out.append({"rc": result.rc})
        except SshCommandError as error:
            raise TribesFailure(str(error)) from None
        self._log(result, str(command))
        return result

    @keyword
    def get_generation_links_over_ssh(self, node: str) -> dict[str, str]:
        """Read the selected and running system links on the node itself over SSH.

        Uses the target's command templates (``TARGET.real.node_commands``, by default
        ``readlink -f`` of ``/var/guix/profiles/system`` and ``/run/current-system``), as an
        operator would; returns ``{"selected": path, "running": path}``.

        Example:
        | ${links}=    Get Generation Links Over SSH    hetzner-1
        | Should Be Equal    ${links}[selected]    ${links}[running]
        """
        commands = self.ctx.require_target().node_commands()
        links: dict[str, str] = {}
        try:
            for name in ("selected", "running"):
                result = self.ctx.ssh().run(
                    node,
                    self.ctx.ssh_endpoint(node),
                    commands[f"{name}_generation"],
                    purpose=f"read {name} generation",
                )
                if result.rc != 0:
                    raise TribesFailure(
                        f"node {node}: reading the {name} generation over SSH failed (exit {result.rc}): {result.stderr.strip()[-200:]}"
                    )
                links[name] = result.stdout.strip()
        except Exception as error:
            self.ctx.history.observe(
                node, LINKS_WHAT, {"error": " ".join(str(error).split())[:300]}
            )
            raise
        self.ctx.history.observe(node, LINKS_WHAT, links)
        return links

    @keyword
    def generation_links_should_match_api(self, node: str) -> None:
        """The symlinks on disk (over SSH) agree with ``generation.status`` from the API.

        Example:
        | Generation Links Should Match API    scaleway-1
        """
        links = self.get_generation_links_over_ssh(node)
        status = self.ctx.client(node).call_typed("generation.status")
        api = {"selected": status.selected, "running": status.running}
        if links != api:
            raise TribesFailure(
                f"node {node}: generation links on disk {links} differ from the API {api}"
            )

    def _log(self, result: CommandResult, command: str) -> None:
        target = self.ctx.require_target()
        key: Any
        try:
            key = self.ctx.admin_key()
        except Exception:  # a target whose key cannot load still shows the command's output
            key = None
        scrubber = SecretScrubber.for_keys(key, target.ssh_key_file())
        # Scrub whole streams, then cut: a key cut in half would no longer match its redaction.
        clean, redacted = scrubber.scrub(
            {"command": command, "stdout": result.stdout, "stderr": result.stderr}
        )
        lines = [f"node {result.node}: `{clean.get('command', '<redacted>')}` exited {result.rc}"]
        for stream in ("stdout", "stderr"):
            text = str(clean.get(stream, "<redacted>"))[-_LOGGED_OUTPUT_CHARS:]
            if text:
                lines.append(f"{stream}:\n{text}")
        if redacted:
            lines.append(f"(redacted: {', '.join(redacted)})")
        logger.info("\n".join(lines))
