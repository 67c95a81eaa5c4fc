"""The simulated node's SSH server: exec, interactive shell, auth, SSHLibrary, no orphans.

The servers run in an event loop on a background thread (as in a node host); asyncssh clients
are submitted to that loop, SSHLibrary (paramiko, blocking) runs in the test thread.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import paramiko
import pytest
from SSHLibrary import SSHLibrary

from tribes_sim.node.ssh_server import (
    SimSshServer,
    generate_ssh_keypair,
    public_key_fingerprint,
    shell_prompt,
    start_ssh_server,
)

USER = "tribes"
NODE = "hetzner-1"
BANNER = "Tribes simulated node hetzner-1"
T = TypeVar("T")

pytestmark = pytest.mark.timeout(60)


class LoopThread:
    """An asyncio loop running forever on a daemon thread; `run` executes a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass(frozen=True)
class Keys:
    host_key: Path
    host_public: str
    client_key: Path
    client_public: str
    stranger_key: Path


@dataclass(frozen=True)
class Node:
    server: SimSshServer
    port: int
    root: Path
    cwd: Path
    keys: Keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    secrets = tmp_path_factory.mktemp("secrets")
    host_public = generate_ssh_keypair(secrets / "host_key", comment="host@hetzner-1")
    client_public = generate_ssh_keypair(secrets / "ssh_client", comment="fleet-client")
    generate_ssh_keypair(secrets / "stranger", comment="stranger")
    return Keys(
        secrets / "host_key",
        host_public,
        secrets / "ssh_client",
        client_public,
        secrets / "stranger",
    )


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


def _start(
    loop_thread: LoopThread, keys: Keys, base: Path, node: str = NODE, banner: str | None = None
) -> Node:
    root = base / "root"
    cwd = base / "home"
    root.mkdir(parents=True)
    cwd.mkdir(parents=True)
    env = {"TRIBES_ROOT": str(root), "TRIBES_LOCAL_PORT": "4000", "TRIBES_NODE": node}
    server = loop_thread.run(
        start_ssh_server(
            "127.0.0.1",
            0,
            host_key_path=keys.host_key,
            authorized_keys=[keys.client_public],
            user=USER,
            env=env,
            cwd=cwd,
            login_banner=banner,
        )
    )
    return Node(server, server.port, root, cwd, keys)


@pytest.fixture
def node(tmp_path: Path, loop_thread: LoopThread, keys: Keys) -> Iterator[Node]:
    started = _start(loop_thread, keys, tmp_path, banner=BANNER)
    yield started
    loop_thread.run(started.server.close())


def _connect(node: Node, *, user: str = USER, key: Path | None = None, **options: Any) -> Any:
    """An asyncssh client connection (awaitable; use inside the loop thread)."""
    return asyncssh.connect(
        "127.0.0.1",
        node.port,
        username=user,
        client_keys=[str(key or node.keys.client_key)],
        known_hosts=None,
        config=None,
        agent_path=None,
        **options,
    )


async def _run(node: Node, command: str, stdin: str | None = None) -> asyncssh.SSHCompletedProcess:
    async with _connect(node) as conn:
        return await conn.run(command, input=stdin, check=False)


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `condition` (cheap, local) until true or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


def _sleep_marker() -> str:
    """A unique, valid `sleep` duration (about 30 s) to find the process again in /proc."""
    return f"30.{uuid.uuid4().int % 10**12:012d}"


# --- keys -----------------------------------------------------------------------------------


def test_keypair_is_openssh_ed25519_private_0600_and_fingerprinted(tmp_path: Path) -> None:
    public_line = generate_ssh_keypair(tmp_path / "k" / "id", comment="me@here")

    private = tmp_path / "k" / "id"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert (tmp_path / "k" / "id.pub").read_text().strip() == public_line
    assert public_line.startswith("ssh-ed25519 ") and public_line.endswith(" me@here")
    # paramiko (SSHLibrary's transport) reads the key file as written.
    assert paramiko.Ed25519Key.from_private_key_file(str(private)).get_name() == "ssh-ed25519"
    fingerprint = public_key_fingerprint(public_line)
    assert fingerprint.startswith("SHA256:") and len(fingerprint) == len("SHA256:") + 43
    assert fingerprint != public_key_fingerprint(generate_ssh_keypair(tmp_path / "other"))


# --- exec -----------------------------------------------------------------------------------


def test_exec_sees_node_env_and_propagates_stdout_stderr_and_exit_status(
    node: Node, loop_thread: LoopThread
) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with _connect(node) as conn:
            host_key = conn.get_server_host_key()
            env = await conn.run("echo $TRIBES_ROOT; echo $TRIBES_LOCAL_PORT; echo $HOME; pwd")
            failed = await conn.run("sh -c 'exit 3'", check=False)
            split = await conn.run("echo out; echo err >&2; exit 4", check=False)
            full_env = await conn.run("env", check=False)
            echoed = await conn.run("cat", input="from stdin\n", check=False)
            # Larger than every buffer on the way: all of it arrives before the exit status.
            bulk = await conn.run(
                "head -c 3000000 /dev/zero | tr '\\0' x; echo end >&2", check=False
            )
            return host_key, env, failed, split, full_env, echoed, bulk

    host_key, env, failed, split, full_env, echoed, bulk = loop_thread.run(scenario())

    assert host_key.get_fingerprint("sha256") == public_key_fingerprint(node.keys.host_public)
    assert env.stdout.splitlines() == [str(node.root), "4000", str(node.cwd), str(node.cwd)]
    assert env.exit_status == 0
    assert failed.exit_status == 3
    assert (split.stdout, split.stderr, split.exit_status) == ("out\n", "err\n", 4)
    # A clean environment: nothing of the server process leaks in besides PATH.
    variables = dict(line.split("=", 1) for line in full_env.stdout.splitlines() if "=" in line)
    assert "PYTEST_CURRENT_TEST" not in variables
    assert variables["LANG"] == "C.UTF-8" and variables["TRIBES_NODE"] == NODE
    assert echoed.stdout == "from stdin\n"
    assert (len(bulk.stdout), bulk.stdout.strip("x"), bulk.stderr) == (3000000, "", "end\n")


def test_exec_killed_by_signal_reports_the_signal(node: Node, loop_thread: LoopThread) -> None:
    result = loop_thread.run(_run(node, "kill -TERM $$"))

    assert result.exit_signal is not None and result.exit_signal[0] == "TERM"


def test_reads_the_generation_symlink_through_the_command_template(
    node: Node, loop_thread: LoopThread
) -> None:
    store_path = node.root / "gnu" / "store" / ("0123456789abcdfghijklmnpqrsvwxyz" + "-system")
    store_path.mkdir(parents=True)
    profile = node.root / "var" / "guix" / "profiles" / "system"
    profile.parent.mkdir(parents=True)
    profile.symlink_to(store_path)

    result = loop_thread.run(_run(node, "readlink ${TRIBES_ROOT:-}/var/guix/profiles/system"))

    assert result.exit_status == 0, result.stderr
    assert result.stdout.strip() == str(store_path)


# --- interactive shell ----------------------------------------------------------------------


def test_pty_shell_prints_banner_and_prompt_echoes_input_and_exit_ends_it(
    node: Node, loop_thread: LoopThread
) -> None:
    prompt = shell_prompt(USER, NODE)

    async def scenario() -> tuple[str, str, int | None]:
        async with _connect(node) as conn:
            shell = await conn.create_process(term_type="vt100", term_size=(80, 24))
            login = await asyncio.wait_for(shell.stdout.readuntil(prompt), 5)
            shell.stdin.write("echo $TRIBES_NODE; tty\n")
            answer = await asyncio.wait_for(shell.stdout.readuntil(prompt), 5)
            shell.stdin.write("exit 7\n")
            await asyncio.wait_for(shell.wait_closed(), 5)
            return login, answer, shell.exit_status

    login, answer, exit_status = loop_thread.run(scenario())

    assert login == f"{BANNER}\r\n{prompt}"
    lines = answer.split("\r\n")
    assert lines[0] == "echo $TRIBES_NODE; tty"  # echoed by the pty, like a real host
    assert lines[1] == NODE
    assert lines[2].startswith("/dev/pts/")
    assert exit_status == 7


def test_shell_without_pty_reads_commands_from_stdin_without_prompt(
    node: Node, loop_thread: LoopThread
) -> None:
    async def scenario() -> asyncssh.SSHCompletedProcess:
        async with _connect(node) as conn:  # like `ssh -T node`
            return await conn.run(input="echo $TRIBES_NODE\nexit 2\n", check=False)

    result = loop_thread.run(scenario())

    assert (result.stdout, result.exit_status) == (f"{BANNER}\n{NODE}\n", 2)


def test_exec_on_a_pty_has_a_controlling_tty_and_delivers_all_output(
    node: Node, loop_thread: LoopThread
) -> None:
    async def scenario() -> tuple[asyncssh.SSHCompletedProcess, asyncssh.SSHCompletedProcess]:
        async with _connect(node) as conn:
            # Like `ssh -t node command`: the command runs on a pty, whose buffer still holds
            # output when the command exits.
            bulk = await conn.run(
                "head -c 300000 /dev/zero | tr '\\0' x; exit 6", term_type="vt100", check=False
            )
            # Opening /dev/tty only works if the pty is the controlling terminal (sh -c does not
            # acquire one by itself, unlike an interactive bash).
            ctty = await conn.run("(: </dev/tty) && echo has-ctty", term_type="vt100", check=False)
            return bulk, ctty

    bulk, ctty = loop_thread.run(scenario())

    assert (len(bulk.stdout), bulk.stdout.strip("x"), bulk.exit_status) == (300000, "", 6)
    assert ctty.stdout == "has-ctty\r\n"


def test_sshlibrary_login_with_public_key_execute_command_and_shell(node: Node) -> None:
    lib = SSHLibrary(timeout="5s", prompt="$ ")
    try:
        lib.open_connection("127.0.0.1", port=node.port, alias="n1")
        login_output = lib.login_with_public_key(USER, str(node.keys.client_key))
        assert BANNER in login_output
        assert login_output.endswith(shell_prompt(USER, NODE))

        assert list(lib.execute_command("echo hi", return_rc=True)) == ["hi", 0]
        stdout, stderr, rc = lib.execute_command(
            "echo out; echo err >&2; exit 5", return_stdout=True, return_stderr=True, return_rc=True
        )
        assert [stdout, stderr, rc] == ["out", "err", 5]

        assert "echo $TRIBES_NODE" in lib.write("echo $TRIBES_NODE")
        output = lib.read_until_prompt()
        assert NODE in output
        assert output.endswith(shell_prompt(USER, NODE))
        assert node.server.active_sessions == 1  # the interactive shell
    finally:
        lib.close_all_connections()

    assert _wait_until(lambda: node.server.active_sessions == 0)
    assert _wait_until(lambda: node.server.active_connections == 0)


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["stranger key", "other user", "password"])
def test_only_the_authorized_key_for_the_user_gets_in(
    node: Node, loop_thread: LoopThread, who: str
) -> None:
    async def attempt() -> None:
        if who == "stranger key":
            connecting = _connect(node, key=node.keys.stranger_key)
        elif who == "other user":
            connecting = _connect(node, user="root")
        else:
            connecting = asyncssh.connect(
                "127.0.0.1",
                node.port,
                username=USER,
                password="tribes",
                client_keys=None,
                known_hosts=None,
                config=None,
                agent_path=None,
            )
        async with connecting as conn:
            await conn.run("true")

    with pytest.raises(asyncssh.PermissionDenied):
        loop_thread.run(attempt())
    # The authorized key itself works on the same server (the refusals above are specific).
    assert loop_thread.run(_run(node, "echo ok")).stdout == "ok\n"


def test_login_banner_is_sent_before_authentication(node: Node, loop_thread: LoopThread) -> None:
    banners: list[str] = []

    class BannerClient(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    async def attempt() -> None:
        async with _connect(node, user="nobody", client_factory=BannerClient):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        loop_thread.run(attempt())
    assert banners == [BANNER + "\n"]


# --- no orphans -----------------------------------------------------------------------------


def test_closing_the_server_kills_a_running_exec_and_its_background_children(
    node: Node, loop_thread: LoopThread
) -> None:
    foreground, background = _sleep_marker(), _sleep_marker()
    started = threading.Event()

    async def long_running() -> asyncssh.SSHCompletedProcess:
        async with _connect(node) as conn:
            process = await conn.create_process(f"sleep {background} & sleep {foreground}")
            started.set()
            return await process.wait(check=False)

    pending = asyncio.run_coroutine_threadsafe(long_running(), loop_thread.loop)
    assert started.wait(5)
    assert _wait_until(lambda: bool(_processes_with(foreground) and _processes_with(background)))

    began = time.monotonic()
    loop_thread.run(node.server.close())

    assert time.monotonic() - began < 5
    assert _wait_until(lambda: not _processes_with(foreground) and not _processes_with(background))
    try:
        outcome = pending.result(5)
    except (asyncssh.Error, OSError):
        pass  # the connection went away before the exit report: also a proper end
    else:
        # Closed without an exit status, or killed: never a normal completion.
        assert outcome.returncode is None or outcome.exit_signal[0] == "KILL"
    assert node.server.active_sessions == 0


def test_client_disconnect_kills_exec_and_shell_job_children(
    node: Node, loop_thread: LoopThread
) -> None:
    in_exec, in_shell_job = _sleep_marker(), _sleep_marker()
    prompt = shell_prompt(USER, NODE)

    async def start_then_drop() -> None:
        conn = await _connect(node)
        await conn.create_process(f"sleep {in_exec}")
        shell = await conn.create_process(term_type="vt100")
        await asyncio.wait_for(shell.stdout.readuntil(prompt), 5)
        # A background job of an interactive shell lives in a process group of its own, and
        # nohup keeps the terminal hang-up from reaping it for us.
        shell.stdin.write(f"nohup sleep {in_shell_job} >/dev/null 2>&1 &\n")
        await asyncio.wait_for(shell.stdout.readuntil(prompt), 5)
        conn.close()
        await conn.wait_closed()

    loop_thread.run(start_then_drop())

    assert _wait_until(lambda: not _processes_with(in_exec) and not _processes_with(in_shell_job))
    assert _wait_until(lambda: node.server.active_sessions == 0)


def test_a_finished_exec_leaves_no_background_process(node: Node, loop_thread: LoopThread) -> None:
    marker = _sleep_marker()

    result = loop_thread.run(_run(node, f"sleep {marker} >/dev/null 2>&1 & echo started"))

    assert result.stdout == "started\n"
    assert _wait_until(lambda: not _processes_with(marker))


# --- many nodes -----------------------------------------------------------------------------


def test_ten_nodes_in_one_loop_serve_concurrently(
    tmp_path: Path, loop_thread: LoopThread, keys: Keys
) -> None:
    nodes: list[Node] = []
    try:
        for index in range(10):
            nodes.append(_start(loop_thread, keys, tmp_path / f"n{index}", node=f"ovh-{index}"))

        async def ask_everyone() -> list[asyncssh.SSHCompletedProcess]:
            return await asyncio.gather(*(_run(n, "echo $TRIBES_NODE") for n in nodes))

        answers = loop_thread.run(ask_everyone())

        assert [a.stdout.strip() for a in answers] == [f"ovh-{i}" for i in range(10)]
        assert len({n.port for n in nodes}) == 10
    finally:
        for started in nodes:
            loop_thread.run(started.server.close())
