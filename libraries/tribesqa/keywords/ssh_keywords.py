"""Ad-hoc commands on a node over SSH, on the library's one pinned connection per node."""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.clients.ssh_client import CommandResult, SshCommandError
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.component import Component
from tribesqa.reporting.snapshot import SecretScrubber

_LOGGED_OUTPUT_CHARS = 4000


class SshKeywords(Component):
    @keyword(tags=["ssh", "node"])
    def run_command_on_node(self, node: str, command: str) -> CommandResult:
        """Run ``command`` with ``/bin/sh -c`` on ``node`` over SSH; return its result.

        The command runs on an exec channel of the library's SSH connection to that node (one
        per node, opened on first use, host key pinned to the fingerprint Legion recorded,
        closed by `Close Target`), as the target's SSH user with the target's key. Nothing is
        matched against a prompt; stdin is empty.

        Returns an object with ``stdout`` and ``stderr`` (text, nothing stripped) and ``rc``
        (the exit status; negative when the command was killed by a signal), plus ``node``.
        A non-zero ``rc`` is returned, not failed: check it. The keyword fails, naming the
        node, when the node is unknown to Legion, has no SSH endpoint, refuses the login or
        presents another host key, or the command outlives ``ssh_command`` (timeouts profile).

        The log shows the command, the exit status and the output (admin and SSH key
        material redacted); the key itself is never logged.

        Example:
        | ${result}=    Run Command On Node    hetzner-1    readlink -f $TRIBES_ROOT/run/current-system
        | Should Be Equal As Integers    ${result.rc}    0
        | Should Contain    ${result.stdout}    /gnu/store/
        | ${tables}=    Run Command On Node    hetzner-1    sqlite3 $TRIBES_ROOT/../node.db .tables
        | Should Not Contain    ${tables.stdout}    supertest_cases
        """
        name = str(node)
        try:
            endpoint = self.ctx.ssh_endpoint(name)
            result = self.ctx.ssh().run(name, endpoint, str(command), purpose="ad-hoc command")
        except SshCommandError as error:
            raise TribesFailure(str(error)) from None
        self._log(result, str(command))
        return result

    def _log(self, result: CommandResult, command: str) -> None:
        target = self.ctx.require_target()
        key: Any
        try:
            key = self.ctx.admin_key()
        except Exception:  # a target whose key cannot load still shows the command's output
            key = None
        scrubber = SecretScrubber.for_keys(key, target.ssh_key_file())
        clean, redacted = scrubber.scrub(
            {
                "stdout": result.stdout[-_LOGGED_OUTPUT_CHARS:],
                "stderr": result.stderr[-_LOGGED_OUTPUT_CHARS:],
            }
        )
        lines = [f"node {result.node}: `{command}` exited {result.rc}"]
        for stream in ("stdout", "stderr"):
            text = str(clean.get(stream, "<redacted>"))
            if text:
                lines.append(f"{stream}:\n{text}")
        if redacted:
            lines.append(f"(redacted: {', '.join(redacted)})")
        logger.info("\n".join(lines))
