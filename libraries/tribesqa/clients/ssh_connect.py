"""Opening one SSH connection to a node as OpenSSH would: route, credentials, host key check.

* Route: direct TCP, a ``ProxyCommand`` (its stdin/stdout carry the connection, e.g.
  ``tailscale nc %h %p``) or a ``ProxyJump`` host (a ``direct-tcpip`` channel of a connection to
  the jump host); either from the target or from an OpenSSH client config file.
* Credentials: the key file (its passphrase from an environment variable or a file, never
  logged), and/or the keys of a running ssh-agent when the target allows it.
* Host key: Legion's recorded fingerprint wins; else the known_hosts file. A key that matches
  neither is refused with the node and the fingerprint, unless the target says
  ``host_key_policy: accept-new`` (then an unknown key, never a changed one, is accepted and
  written to the known_hosts file when one is configured).
* Timeouts: ``timeout_s`` bounds the TCP connect, the SSH banner, authentication and the
  opening of every channel.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


#: OpenSSH's default, used when neither the target nor the config file names a known_hosts file.
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


class SshCommandError(AssertionError):
    """An SSH command could not run (no connection, refused host key, timeout); names the node
    and, once a command is involved, its purpose."""


@functools.cache
def _paramiko() -> Any:
    """paramiko, imported on first use: it costs about 0.15 s of CPU to import, which a robot
    process that never opens an SSH session (a simulator run, one pabot process per suite)
    should not pay. Its own logger is held at WARNING: its debug lines name key files."""
    import paramiko

    logging.getLogger("paramiko").setLevel(logging.WARNING)
    return paramiko


def _session_errors() -> tuple[type[BaseException], ...]:
    """The errors of a connection that cannot carry a command (dead, refused, reset)."""
    return (_paramiko().SSHException, OSError, EOFError)


@dataclass(frozen=True)
class SshEndpointInfo:
    host: str
    port: int
    user: str
    # Legion's record of the node's host key ("SHA256:..."); when known, the connection is pinned.
    host_key_fingerprint: str | None = None


@dataclass(frozen=True)
class SshOptions:
    """How to connect (from ``TARGET.ssh``); the passphrase is never part of the repr."""

    key_file: Path | None = None
    passphrase: str | None = field(default=None, repr=False)
    port: int | None = None  # TARGET.ssh.port: wins over the config file and Legion
    allow_agent: bool = False
    timeout_s: float = 30.0
    proxy_command: str | None = None
    proxy_jump: str | None = None
    config_file: Path | None = None
    known_hosts_file: Path | None = None
    host_key_policy: str = "strict"


def key_fingerprint(key: Any) -> str:
    """OpenSSH-style ``SHA256:<base64>`` fingerprint of a paramiko public key."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line uses: ``host``, or ``[host]:port`` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def expand_tokens(template: str, *, host: str, port: int, user: str, node: str) -> str:
    """OpenSSH's ``%h %p %r %n %%`` in a ProxyCommand (``%n``: the node's name)."""
    values = {"h": host, "p": str(port), "r": user, "n": node, "%": "%"}
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char == "%" and index + 1 < len(template) and template[index + 1] in values:
            out.append(values[template[index + 1]])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


class HostKeyCheck:
    """paramiko host-key policy: Legion's fingerprint, else known_hosts, else the policy."""

    def __init__(self, node: str, endpoint: SshEndpointInfo, options: SshOptions) -> None:
        self.node = node
        self.endpoint = endpoint
        self.options = options

    def _known_hosts(self) -> Any:
        keys = _paramiko().HostKeys()
        path = self.options.known_hosts_file
        if path is not None and path.is_file():
            try:
                keys.load(str(path))
            except (OSError, ValueError) as error:
                raise SshCommandError(
                    f"node {self.node}: cannot read known_hosts file {path}: {error}"
                ) from None
        return keys

    def missing_host_key(self, _client: Any, hostname: str, key: Any) -> None:
        presented = key_fingerprint(key)
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        expected = self.endpoint.host_key_fingerprint
        if expected:
            if presented != expected:
                raise SshCommandError(
                    f"node {self.node}: SSH host key {presented} at {where} is not the one "
                    f"Legion recorded ({expected}): refusing to run commands"
                )
            return
        known = (self._known_hosts().lookup(hostname) or {}).get(key.get_name())
        source = self.options.known_hosts_file or "no known_hosts file"
        if known is not None:
            if known == key:
                return
            raise SshCommandError(
                f"node {self.node}: SSH host key {presented} at {where} differs from the one "
                f"in {source} ({key_fingerprint(known)}): refusing to connect"
            )
        if self.options.host_key_policy == "accept-new":
            self._remember(hostname, key)
            log.info("node %s: accepted new SSH host key %s at %s", self.node, presented, where)
            return
        raise SshCommandError(
            f"node {self.node}: unknown SSH host key {presented} at {where}: Legion recorded no "
            f"fingerprint and {source} has no entry for {hostname}; add the key to known_hosts "
            "(TARGET.ssh.known_hosts_file) or set TARGET.ssh.host_key_policy: accept-new"
        )

    def _remember(self, hostname: str, key: Any) -> None:
        path = self.options.known_hosts_file
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        except OSError as error:
            log.warning("node %s: could not add the host key to %s: %s", self.node, path, error)


@dataclass(frozen=True)
class Route:
    """Where and how to reach a node once the client config file is applied."""

    host: str
    port: int
    user: str
    key_files: tuple[str, ...]
    proxy_command: str | None
    proxy_jump: str | None
    known_hosts_file: Path | None


def resolve_route(node: str, endpoint: SshEndpointInfo, options: SshOptions) -> Route:
    """Apply the OpenSSH client config file (looked up by node name, else by address):
    ``HostName``, ``Port``, ``IdentityFile``, ``ProxyCommand``, ``ProxyJump``,
    ``UserKnownHostsFile``. The target's own settings win over the file."""
    entry: dict[str, Any] = {}
    if options.config_file is not None:
        try:
            config = _paramiko().SSHConfig.from_path(str(options.config_file))
        except (OSError, ValueError) as error:
            raise SshCommandError(
                f"node {node}: cannot read SSH config {options.config_file}: {error}"
            ) from None
        entry = config.lookup(node)
        if entry.get("hostname", node) == node:  # no block gives this node a HostName
            entry = config.lookup(endpoint.host)
    host = entry.get("hostname", endpoint.host)
    port = options.port or (int(entry["port"]) if "port" in entry else endpoint.port)
    files = tuple(str(p) for p in ([options.key_file] if options.key_file else []))
    files = files or tuple(entry.get("identityfile", []))
    known = options.known_hosts_file
    if known is None and entry.get("userknownhostsfile"):
        known = Path(str(entry["userknownhostsfile"]).split()[0]).expanduser()
    known = known or DEFAULT_KNOWN_HOSTS.expanduser()
    proxy_command = options.proxy_command or _none_is_unset(entry.get("proxycommand"))
    proxy_jump = options.proxy_jump or _none_is_unset(entry.get("proxyjump"))
    if options.proxy_command:
        proxy_command = expand_tokens(
            options.proxy_command, host=host, port=port, user=endpoint.user, node=node
        )
    return Route(host, port, endpoint.user, files, proxy_command, proxy_jump, known)


def _none_is_unset(value: Any) -> str | None:
    return None if value is None or str(value).lower() == "none" else str(value)


def parse_jump(spec: str, default_user: str) -> tuple[str, str, int]:
    """``[user@]host[:port]`` -> (user, host, port); one hop only."""
    if "," in spec:
        raise SshCommandError(f"ProxyJump {spec!r}: only one jump host is supported")
    user, _, rest = spec.rpartition("@")
    host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    try:
        return user or default_user, host or rest, int(port) if port else 22
    except ValueError:
        raise SshCommandError(f"ProxyJump {spec!r}: port {port!r} is not a number") from None


def open_client(
    node: str,
    endpoint: SshEndpointInfo,
    options: SshOptions,
    route: Route,
    *,
    sock: Any = None,
) -> Any:
    """A connected, authenticated paramiko client (``sock``: an already opened route)."""
    paramiko = _paramiko()
    if not route.key_files and not options.allow_agent:
        raise SshCommandError(f"node {node}: no SSH key configured for this target")
    client = paramiko.SSHClient()
    # The key is checked where the connection really goes (the config file's HostName/Port).
    checked = SshEndpointInfo(route.host, route.port, route.user, endpoint.host_key_fingerprint)
    client.set_missing_host_key_policy(
        HostKeyCheck(node, checked, _with_known_hosts(options, route))
    )
    where = f"{route.user}@{route.host}:{route.port}"
    if sock is None and route.proxy_command:
        sock = paramiko.ProxyCommand("/bin/sh -c " + shlex.quote("exec " + route.proxy_command))
    try:
        client.connect(
            route.host,
            port=route.port,
            username=route.user,
            key_filename=list(route.key_files) or None,
            passphrase=options.passphrase,
            timeout=options.timeout_s,
            banner_timeout=options.timeout_s,
            auth_timeout=options.timeout_s,
            channel_timeout=options.timeout_s,
            allow_agent=options.allow_agent,
            look_for_keys=False,
            sock=sock,
        )
    except SshCommandError:
        client.close()
        raise
    except (*_session_errors(), ValueError) as error:
        client.close()
        with contextlib.suppress(Exception):
            if sock is not None:
                sock.close()
        reason = str(error) or type(error).__name__
        via = f" via {route.proxy_command!r}" if route.proxy_command and sock else ""
        raise SshCommandError(f"node {node}: SSH login as {where}{via} failed: {reason}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(0)
    return client


def _with_known_hosts(options: SshOptions, route: Route) -> SshOptions:
    if route.known_hosts_file == options.known_hosts_file:
        return options
    from dataclasses import replace

    return replace(options, known_hosts_file=route.known_hosts_file)


def options_from_settings(
    settings: Any, key_file: Path | None, fill: Any = lambda text: text
) -> SshOptions:
    """``SshOptions`` from ``TARGET.ssh`` (an ``SshSettings``); ``fill`` fills ``{tmp}``-style
    placeholders in paths. Reads the key passphrase now; its value appears in no message."""
    passphrase = None
    if settings.key_passphrase_env:
        passphrase = os.environ.get(settings.key_passphrase_env)
        if not passphrase:
            raise SshCommandError(
                f"TARGET.ssh.key_passphrase_env: environment variable "
                f"{settings.key_passphrase_env} is not set"
            )
    elif settings.key_passphrase_file:
        path = Path(fill(settings.key_passphrase_file)).expanduser()
        try:
            passphrase = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise SshCommandError(
                f"TARGET.ssh.key_passphrase_file: cannot read {path}: {type(error).__name__}"
            ) from None

    def path_of(value: str | None) -> Path | None:
        return Path(fill(value)).expanduser() if value else None

    return SshOptions(
        key_file=key_file,
        passphrase=passphrase,
        port=settings.port,
        allow_agent=settings.allow_agent,
        timeout_s=settings.timeout_s,
        proxy_command=settings.proxy_command,
        proxy_jump=settings.proxy_jump,
        config_file=path_of(settings.config_file),
        known_hosts_file=path_of(settings.known_hosts_file),
        host_key_policy=settings.host_key_policy,
    )
