"""Private redis-server and PostgreSQL processes for ``ingestro dev``, tests and benchmarks.

Each server is a real child process that listens on 127.0.0.1 only, on a free
port (or the one given), and keeps its data under ``data_dir``. What a caller
may rely on:

- ``start()`` returns once the server answers and is known to be *this* process,
  not another server that happens to hold the port; it raises ``ServerError``
  (with the tail of the server's log) otherwise, leaving nothing running.
- ``stop()`` returns once every process the server spawned is gone; ``kill()``
  SIGKILLs them all at once, like a crash. Both are idempotent.
- ``restart()`` keeps the port and the data.
- Children run under ``ingestro.devtools.supervisor``: in their own session, so a
  Ctrl-C at the terminal does not reach them (the caller stops them, in its own
  order), without inherited ``PG*`` or ``INGESTRO_*`` variables. Nothing is
  registered with ``atexit``; callers call ``stop()`` or use the ``with`` form.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TypedDict
from urllib.parse import quote

import attrs

from ingestro.devtools.supervisor import Child, child_environment

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

_POLL_INTERVAL = 0.05
_PORT_ATTEMPTS = 3
#: Where a PostgreSQL cluster goes when the unprivileged user cannot reach ``data_dir``:
#: into _OUTSIDE_ROOT/_OUTSIDE_PREFIX<hash>/cluster, beside a file naming the data_dir.
_OUTSIDE_ROOT = Path("/var/tmp")
_OUTSIDE_PREFIX = "ingestro-pg-"
_OWNER_FILE = "data_dir"


class ServerError(RuntimeError):
    """A server's binaries are missing, or the server failed to start."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- processes -----------------------------------------------------------------


@attrs.frozen
class _RunAs:
    """An unprivileged OS user to run PostgreSQL as: it refuses to run as root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def for_postgres(cls) -> _RunAs | None:
        """The user to run PostgreSQL as, or None to run it as ourselves (when not root)."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            groups = tuple(os.getgrouplist(name, entry.pw_gid))
            return cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid, groups=groups)
        raise ServerError(
            "PostgreSQL refuses to run as root, and there is neither a 'postgres' nor a 'nobody' user to run it as"
        )

    def can_search(self, directory: Path) -> bool:
        """Whether this user can reach entries of ``directory``, i.e. search it and all its parents."""
        # Ask the kernel as that user rather than reading mode bits: ACLs and group
        # membership decide too.
        result = subprocess.run(
            ["test", "-x", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            **_user_args(self),
        )
        return result.returncode == 0

    def take(self, path: Path) -> None:
        """Make ``path`` (and, if it belonged to someone else, everything in it) owned by this user."""
        if path.stat().st_uid == self.uid:
            return
        os.chown(path, self.uid, self.gid)
        for parent, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), self.uid, self.gid, follow_symlinks=False)


class _UserArgs(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _user_args(run_as: _RunAs | None) -> _UserArgs:
    """subprocess arguments that run a child as ``run_as`` (no switch when None)."""
    if run_as is None:
        return {}
    # extra_groups drops root's supplementary groups (gid 0 among them).
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}


def _started(child: Child) -> Child:
    child.start()
    return child


# --- the common server life cycle ------------------------------------------------


class _Started(abc.ABC):
    """Something started and stopped as a whole (a server, a cluster of them), also as a context manager."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@attrs.define
class _Server(_Started):
    """The life cycle shared by both servers; subclasses say how to spawn one and how to tell it answers."""

    data_dir: Path
    #: 0 means "pick a free port at the first start"; the chosen port is kept from then on.
    port: int = 0
    _child: Child | None = attrs.field(default=None, init=False, repr=False)

    _name: ClassVar[str]
    _ready_timeout: ClassVar[float]
    _stop_signal: ClassVar[signal.Signals]
    _stop_timeout: ClassVar[float]

    @property
    @abc.abstractmethod
    def log_path(self) -> Path:
        """The file the server's stdout and stderr are appended to."""

    @abc.abstractmethod
    def _spawn(self) -> Child:
        """Start the server process on ``self.port``."""

    @abc.abstractmethod
    def _is_ready(self, child: Child) -> bool:
        """Whether ``child`` itself answers on ``self.port``."""

    @property
    def pid(self) -> int | None:
        """The server's process id between ``start()`` and ``stop()``/``kill()``, else None."""
        return None if self._child is None else self._child.pid

    def _bound_port(self) -> int:
        if self.port == 0:
            raise ServerError(f"{self._name} has no port yet: call start() first")
        return self.port

    def start(self) -> None:
        """Start the server and wait until it answers; a no-op if it is already started."""
        if self._child is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pick_port = self.port == 0
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if pick_port:
                self.port = free_port()
            child = self._spawn()
            try:
                failure = self._wait_ready(child)
            except BaseException:
                # Ctrl-C reaches only us (the child has its own session): don't leave it behind.
                child.kill()
                raise
            if failure is None:
                self._child = child
                log.info("%s pid %s listening on %s:%d", self._name, child.pid, HOST, self.port)
                return
            child.kill()
            output = child.output()
            # Another process took the port between free_port() and the bind: pick another.
            if pick_port and attempt < _PORT_ATTEMPTS and "Address already in use" in output:
                log.info("%s: port %d was taken meanwhile, retrying", self._name, self.port)
                continue
            raise ServerError(f"{self._name} on port {self.port} {failure}; {self.log_path} ends with:\n{output}")

    def _wait_ready(self, child: Child) -> str | None:
        """None once ``child`` answers, else why it never will."""
        deadline = time.monotonic() + self._ready_timeout
        while not self._is_ready(child):
            code = child.returncode
            if code is not None:
                return f"exited with code {code} while starting"
            if time.monotonic() >= deadline:
                return f"did not answer within {self._ready_timeout:.0f} s"
            time.sleep(_POLL_INTERVAL)
        return None

    def stop(self) -> None:
        """Shut the server down cleanly (killing it if it takes too long); a no-op if not started."""
        if self._child is not None:
            self._child.stop(self._stop_signal, self._stop_timeout)
            self._child = None

    def kill(self) -> None:
        """SIGKILL the server and all its helper processes, like a crash; a no-op if not started."""
        if self._child is not None:
            self._child.kill()
            self._child = None


# --- Redis -----------------------------------------------------------------------


@functools.cache
def _redis_server_binary() -> str:
    """redis-server's path, or a ServerError saying how to install it."""
    path = shutil.which("redis-server")
    if path is None:
        raise ServerError(
            "redis-server is not on PATH: install it with `apt-get install redis-server` "
            "(`make run` and `make test` do)"
        )
    return path


def _redis_pid(port: int) -> int | None:
    """The process id the Redis on ``port`` reports, or None while nothing answers (or it is loading)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"INFO server\r\n")
            reply = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                reply += chunk
                header, found, body = reply.partition(b"\r\n")
                if not found:
                    continue
                if not header.startswith(b"$"):  # an error such as -LOADING
                    return None
                if len(body) >= int(header[1:]):
                    break
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(b"process_id:"):
            return int(line.partition(b":")[2])
    return None


@attrs.define
class RedisServer(_Server):
    """A private redis-server; its AOF (fsynced every second) and log ``redis.log`` live in ``data_dir``."""

    appendonly: bool = True
    #: A Redis Cluster node (``--cluster-enabled``), its cluster state in ``nodes.conf``: see ``RedisClusterServers``.
    cluster_node: bool = False
    #: A cluster node's ``cluster-node-timeout``: how long a master may not answer before its replica takes over.
    cluster_node_timeout_ms: int = 2000

    _name = "redis-server"
    _ready_timeout = 10.0
    # Redis treats SIGTERM as SHUTDOWN: it flushes the AOF, and with save "" writes no snapshot.
    _stop_signal = signal.SIGTERM
    _stop_timeout = 10.0

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self._bound_port()}/0"

    def _spawn(self) -> Child:
        argv = [
            _redis_server_binary(),
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ]
        if self.cluster_node:
            argv += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(self.cluster_node_timeout_ms),
            ]
        return _started(Child(self._name, argv, log_path=self.log_path, cwd=self.data_dir))

    def _is_ready(self, child: Child) -> bool:
        return _redis_pid(self.port) == child.pid


@attrs.define
class RedisClusterServers(_Started):
    """A private Redis Cluster of ``masters`` redis-server nodes and ``replicas`` replicas of each, every node under
    ``data_dir/node-I``.

    ``start()`` starts every node, then (the first time) joins them with ``redis-cli --cluster create``,
    the slots split evenly, and returns once every node says the cluster is ``ok`` and every master has its
    replicas in sync; a restart keeps the ports, the data and the cluster (``nodes.conf``). ``url`` names the
    first node: a cluster client discovers the others from it. A master that stops answering for
    ``node_timeout_ms`` is replaced by its replica; started again, it rejoins as a replica of that one.
    """

    data_dir: Path
    masters: int = 3
    replicas: int = 0
    #: Each node's ``cluster-node-timeout`` (ms).
    node_timeout_ms: int = 2000
    nodes: list[RedisServer] = attrs.field(factory=list, init=False)

    _ready_timeout: ClassVar[float] = 30.0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` of the first node."""
        return f"redis://{HOST}:{self.nodes[0].port}"

    def start(self) -> None:
        """Start the nodes and form the cluster if not yet formed; ServerError (nothing left running) on failure."""
        if self.masters < 1 or (self.masters < 3 and self.replicas):
            raise ServerError(
                f"a Redis Cluster needs at least 1 master (3 with replicas), not {self.masters} with {self.replicas}"
            )
        if not self.nodes:
            self.nodes = [
                RedisServer(
                    self.data_dir / f"node-{index}",
                    port=_cluster_node_port(),
                    cluster_node=True,
                    cluster_node_timeout_ms=self.node_timeout_ms,
                )
                for index in range(self.masters * (1 + self.replicas))
            ]
        try:
            for node in self.nodes:
                node.start()
            if not self._state_ok(self.nodes[0]):
                self._create()
            self.wait_ok()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        if self.masters < 3:
            # redis-cli --cluster create wants 3 masters; fewer (the bench's 1-shard yardstick) get their slots
            # directly, then meet the first node.
            share = 16384 // self.masters
            for index, node in enumerate(self.nodes):
                last = 16383 if index == self.masters - 1 else (index + 1) * share - 1
                _redis_cli(node, "CLUSTER", "ADDSLOTSRANGE", str(index * share), str(last))
                if index:
                    _redis_cli(node, "CLUSTER", "MEET", HOST, str(self.nodes[0].port))
            return
        argv = [_redis_cli_binary(), "--cluster", "create", *(f"{HOST}:{node.port}" for node in self.nodes)]
        done = subprocess.run(
            [*argv, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_environment(),
            check=False,
        )
        if done.returncode != 0:
            raise ServerError(f"redis-cli --cluster create failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def wait_ok(self) -> None:
        """Return once every node says the cluster is ``ok`` and every master has its replicas in sync (also after
        a node was killed and started again); ServerError after the ready timeout."""
        deadline = time.monotonic() + self._ready_timeout
        while not all(self._state_ok(node) for node in self.nodes) or not self._replicas_in_sync():
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"the Redis Cluster in {self.data_dir} did not become ok within {self._ready_timeout:.0f} s"
                )
            time.sleep(_POLL_INTERVAL * 4)

    def _replicas_in_sync(self) -> bool:
        """Whether every master serving slots has ``replicas`` replicas online (``INFO replication``)."""
        masters = [node for node in self.nodes if "role:master" in _redis_cli(node, "INFO", "replication")]
        if len(masters) != self.masters:
            return False
        return all(_redis_cli(node, "INFO", "replication").count("state=online") >= self.replicas for node in masters)

    def masters_now(self) -> list[RedisServer]:
        """The running nodes that are masters at the moment (after a failover: the promoted replicas)."""
        return [
            node
            for node in self.nodes
            if node.pid is not None and "role:master" in _redis_cli(node, "INFO", "replication")
        ]

    @staticmethod
    def _state_ok(node: RedisServer) -> bool:
        return "cluster_state:ok" in _redis_cli(node, "CLUSTER", "INFO")

    def stop(self) -> None:
        """Stop every node (their data and the cluster stay for a restart)."""
        for node in self.nodes:
            node.stop()


def _redis_cli(node: RedisServer, *command: str) -> str:
    """What ``redis-cli`` prints for ``command`` sent to ``node`` (empty when it does not answer)."""
    done = subprocess.run(
        [_redis_cli_binary(), "-h", HOST, "-p", str(node.port), *command],
        capture_output=True,
        text=True,
        timeout=10,
        env=child_environment(),
        check=False,
    )
    return done.stdout


def _cluster_node_port() -> int:
    """A free port for a cluster node whose bus port (10000 above it, as Redis sets it) is free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port + 10000))
            except OSError:
                continue
        return port


@functools.cache
def _redis_cli_binary() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        raise ServerError("redis-cli is not on PATH: install it with `apt-get install redis-tools`")
    return path


# --- PostgreSQL ------------------------------------------------------------------


@attrs.frozen
class _PgBinaries:
    postgres: str
    initdb: str
    psql: str


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>: "9.6" < "15"; non-numeric names first."""
    try:
        return tuple(int(part) for part in path.name.split("."))
    except ValueError:
        return ()


@functools.cache
def _pg_binaries() -> _PgBinaries:
    """The server binaries from ``pg_config --bindir``, else the newest /usr/lib/postgresql, else PATH."""
    bindirs: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            bindirs.append(Path(result.stdout.strip()))
    bindirs += [path / "bin" for path in sorted(Path("/usr/lib/postgresql").glob("*"), key=_version_key, reverse=True)]
    for bindir in bindirs:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            psql = bindir / "psql"
            return _PgBinaries(
                postgres=str(bindir / "postgres"),
                initdb=str(bindir / "initdb"),
                psql=str(psql) if psql.is_file() else _require("psql"),
            )
    return _PgBinaries(postgres=_require("postgres"), initdb=_require("initdb"), psql=_require("psql"))


def _require(name: str) -> str:
    """The path of PostgreSQL program ``name`` on PATH, or a ServerError saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ServerError(
            f"PostgreSQL's {name} was found neither in `pg_config --bindir`, /usr/lib/postgresql/*/bin "
            "nor on PATH: install it with `apt-get install postgresql` (`make run` and `make test` do)"
        )
    return path


def _locale_args() -> list[str]:
    """initdb locale options: C collation, with UTF-8 character classes where the OS has them."""
    # C collation is byte order: fast, and immune to the glibc collation changes
    # that silently corrupt text indexes. A UTF-8 LC_CTYPE lets upper(), lower()
    # and regex classes know non-ASCII letters.
    try:
        result = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return ["--locale=C"]
    available = {name.lower() for name in result.stdout.split()}
    return ["--locale=C", "--lc-ctype=C.UTF-8"] if available & {"c.utf8", "c.utf-8"} else ["--locale=C"]


def _postmaster_ready(cluster: Path, pid: int) -> bool:
    """Whether postmaster.pid says process ``pid`` accepts connections on ``cluster``."""
    # The file pg_ctl waits on: line 1 is the postmaster's pid, line 8 its status.
    try:
        lines = (cluster / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[0] == str(pid) and lines[7].strip() == "ready"


def _remove_abandoned_homes() -> None:
    """Delete the /var/tmp cluster homes whose data_dir no longer links to them (it was deleted)."""
    for home in _OUTSIDE_ROOT.glob(f"{_OUTSIDE_PREFIX}*"):
        try:
            owner = Path((home / _OWNER_FILE).read_text())
        except OSError:  # not a home, or one still being set up
            continue
        try:
            linked = os.readlink(owner / home.name) == str(home)
        except OSError:
            linked = False
        if not linked:
            log.info("removing %s, abandoned by %s", home, owner)
            shutil.rmtree(home, ignore_errors=True)


@attrs.define
class PostgresServer(_Server):
    """A private PostgreSQL whose cluster is ``data_dir`` itself, logging to ``data_dir/postgres.log``.

    As root, it runs as the ``postgres`` user (else ``nobody``). When that user
    cannot reach ``data_dir`` (say, a clone under /root), the cluster goes to
    /var/tmp/ingestro-pg-<hash of data_dir>/cluster instead, linked from
    ``data_dir/ingestro-pg-<hash>``. Such a cluster lives as long as the link:
    the next fallback start anywhere deletes the ones whose link is gone, so a
    ``data_dir`` deleted or wiped gets a fresh cluster.
    """

    durable: bool = True
    database: str = "ingestro"
    user: str = "ingestro"
    _cluster: Path | None = attrs.field(default=None, init=False, repr=False)

    _name = "postgres"
    # Generous: after a crash the server replays its WAL before it answers.
    _ready_timeout = 60.0
    # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
    _stop_signal = signal.SIGINT
    _stop_timeout = 30.0

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def url(self) -> str:
        """``postgresql://USER@127.0.0.1:PORT/DATABASE``."""
        return f"postgresql://{quote(self.user, safe='')}@{HOST}:{self._bound_port()}/{quote(self.database, safe='')}"

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster really is: ``data_dir`` resolved, or its /var/tmp stand-in. Set by start()."""
        if self._cluster is None:
            raise ServerError("postgres has no cluster yet: call start() first")
        return self._cluster

    def start(self) -> None:
        """Start PostgreSQL (running initdb the first time), then create ``database`` if missing."""
        if self._child is None:
            super().start()
            try:
                self._create_database()
            except BaseException:
                self.stop()
                raise

    def _spawn(self) -> Child:
        run_as = _RunAs.for_postgres()
        cluster = self._prepare_cluster(run_as)
        self._cluster = cluster
        argv = [
            _pg_binaries().postgres,
            "-D",
            str(cluster),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "log_min_messages=warning",
        ]
        if not self.durable:
            # Tests only: a crash of the OS (not of postgres) may lose or corrupt data.
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        return _started(Child(self._name, argv, log_path=self.log_path, cwd=cluster, popen_args=_user_args(run_as)))

    def _is_ready(self, child: Child) -> bool:
        return child.pid is not None and _postmaster_ready(self.cluster_dir, child.pid)

    def _prepare_cluster(self, run_as: _RunAs | None) -> Path:
        """Find (or place) the cluster directory, owned by ``run_as``, and initdb it if new."""
        data_dir = self.data_dir.resolve()
        cluster = data_dir
        if run_as is not None:
            if not run_as.can_search(data_dir.parent):
                cluster = self._outside_cluster(data_dir, run_as)
            cluster.mkdir(mode=0o700, exist_ok=True)
            run_as.take(cluster)
        if not (cluster / "PG_VERSION").exists():
            self._initdb(cluster, run_as)
        return cluster

    def _outside_cluster(self, data_dir: Path, run_as: _RunAs) -> Path:
        """The cluster standing in for ``data_dir``, which ``run_as`` cannot reach, in a /var/tmp home."""
        home = _OUTSIDE_ROOT / f"{_OUTSIDE_PREFIX}{hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]}"
        link = data_dir / home.name
        # Before our link exists, so that the home of a wiped data_dir at this path goes too.
        _remove_abandoned_homes()
        if home.is_symlink():
            raise ServerError(f"{home} is a symbolic link; refusing to put a cluster there")
        # Link first, record the owner last: a home with an owner but no link is abandoned.
        if not link.is_symlink():
            link.symlink_to(home, target_is_directory=True)
        home.mkdir(mode=0o755, exist_ok=True)
        (home / _OWNER_FILE).write_text(str(data_dir))
        cluster = home / "cluster"
        log.warning(
            "user %s cannot reach %s (a parent directory is not searchable by it); "
            "the PostgreSQL cluster is %s, linked from %s",
            run_as.name,
            data_dir,
            cluster,
            link,
        )
        return cluster

    def _initdb(self, cluster: Path, run_as: _RunAs | None) -> None:
        argv = [
            _pg_binaries().initdb,
            "-D",
            str(cluster),
            "--auth=trust",
            "-U",
            self.user,
            "-E",
            "UTF8",
            *_locale_args(),
        ]
        if not self.durable:
            argv.append("--no-sync")
        # Output goes to a pipe, not the log: initdb wants the directory empty,
        # and the log lives in it.
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cluster,
            env=child_environment(),
            check=False,
            **_user_args(run_as),
        )
        output = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            raise ServerError(f"initdb of {cluster} failed with code {result.returncode}:\n{output}")
        with self.log_path.open("a") as log_file:
            log_file.write(output)

    def _create_database(self) -> None:
        # \gexec runs the CREATE only when the SELECT returns it: idempotent in one round trip.
        script = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        argv = [
            _pg_binaries().psql,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"db={self.database}",
            "-h",
            HOST,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
        ]
        result = subprocess.run(
            argv, input=script.encode(), capture_output=True, env=child_environment(), timeout=60, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise ServerError(f"creating database {self.database!r} failed:\n{output}")
