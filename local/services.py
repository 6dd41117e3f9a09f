"""Embedded PostgreSQL and Redis servers from the OS packages, for local mode, tests and benchmarks.

Nothing here uses the machine's own services on 5432/6379: every server is started in a data
directory of ours on a port of ours, so a developer's machine state never leaks into a test run.
PostgreSQL refuses to run as root, so when we are root the data directory is handed to the
``postgres`` user and the server binaries run under ``runuser``.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

logger = logging.getLogger("order_router.local.services")

MISSING_PACKAGES_HINT = "install the OS packages: apt-get install -y postgresql redis-server"
REDIS_PID_FILE = "redis.pid"


class ServiceStartError(RuntimeError):
    """A server could not be started; the message says what to install or where the log is."""


def free_port() -> int:
    """Ask the kernel for a free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _postgres_bin_dir() -> Path:
    pg_config = shutil.which("pg_config")
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.insert(0, out.stdout.strip())
    for directory in candidates:
        if directory and Path(directory, "initdb").exists():
            return Path(directory)
    raise ServiceStartError(
        f"PostgreSQL server binaries (initdb) not found: {MISSING_PACKAGES_HINT}"
    )


def _version_key(path: str) -> int:
    digits = "".join(ch for ch in Path(path).parent.name if ch.isdigit())
    return int(digits or 0)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; hand them to the postgres system user.
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceStartError(
            "running as root needs the 'postgres' system user: " + MISSING_PACKAGES_HINT
        ) from exc
    return ["runuser", "-u", "postgres", "--", *cmd]


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("postgres")
    os.chown(path, entry.pw_uid, entry.pw_gid)
    # The postgres user must be able to reach the data directory: temp dirs are 0700 root.
    for parent in path.parents:
        mode = parent.stat().st_mode
        if parent.stat().st_uid == 0 and not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir`` listening on ``127.0.0.1:port`` with trust auth.

    The data directory is kept between runs (local mode) or thrown away (tests): the caller
    chooses the directory. ``fsync=off`` because these servers hold nothing that must survive a
    power cut; it makes test databases several times faster to create.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    durable: bool = False

    @property
    def admin_url(self) -> str:
        """URL of the ``postgres`` database as the ``postgres`` superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        """URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> EmbeddedPostgres:
        """Initialise the cluster if needed and start the server; wait until it accepts."""
        bin_dir = _postgres_bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _chown_to_postgres(self.data_dir)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                "initdb",
            )
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += " -c max_connections=200 -c timezone=UTC"
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                "start",
            ],
            "pg_ctl start",
        )
        return self

    def running(self) -> bool:
        """True when a postmaster runs on this data directory (``postmaster.pid`` names it)."""
        return _postmaster_pid(self.data_dir) is not None

    def reclaim(self) -> bool:
        """Stop a server an earlier, killed run left on this data directory.

        Returns
        -------
        bool
            True when there was one (it was stopped with a fast shutdown, or an immediate one
            when a fast one did not finish).
        """
        if not self.running():
            return False
        logger.warning("stopping the PostgreSQL server a previous run left on %s", self.data_dir)
        self.stop()
        if self.running():
            bin_dir = _postgres_bin_dir()
            with contextlib.suppress(ServiceStartError):
                self._run(
                    [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
                    "pg_ctl stop",
                )
        return True

    def stop(self) -> None:
        """Stop the server (fast shutdown); a server already gone is fine."""
        bin_dir = _postgres_bin_dir()
        with contextlib.suppress(ServiceStartError):
            self._run(
                [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                "pg_ctl stop",
            )

    def _run(self, cmd: list[str], what: str) -> None:
        result = subprocess.run(
            _as_postgres_user(cmd), capture_output=True, text=True, check=False, timeout=60
        )
        if result.returncode != 0:
            log = self.data_dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServiceStartError(
                f"{what} failed ({result.returncode}): {result.stderr.strip()} {tail}".strip()
            )


def _postmaster_pid(data_dir: Path) -> int | None:
    # The first line of postmaster.pid is the postmaster's pid; a file left by a killed server
    # names a process that is gone (or, rarely, reused: then it is not a postgres).
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _process_named(pid, "postgres") else None


def _process_named(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith(name)
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A Redis server on ``127.0.0.1:port``; persistence only when ``data_dir`` is given."""

    port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise ServiceStartError(f"redis-server not found: {MISSING_PACKAGES_HINT}")
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no"]
        if self.data_dir is None:
            cmd += ["--save", "", "--appendonly", "no"]
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            cmd += ["--dir", str(self.data_dir), "--appendonly", "yes"]
            # A pid file lets the next run stop this server if this run is killed.
            cmd += ["--pidfile", str(self.data_dir / REDIS_PID_FILE)]
        self._process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise ServiceStartError(f"redis-server exited: {err.strip()}")
            if _answers_ping(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise ServiceStartError(f"redis-server did not answer on port {self.port} within 10 s")

    def running(self) -> bool:
        """True while the server this object started is alive."""
        return self._process is not None and self._process.poll() is None

    def reclaim(self) -> bool:
        """Stop a server an earlier, killed run left on this data directory.

        The pid file's process is stopped only if it really is a ``redis-server`` working in
        this data directory (its current directory), never a process that reused the pid.

        Returns
        -------
        bool
            True when there was one (SIGTERM, then SIGKILL after 10 s).
        """
        if self.data_dir is None:
            return False
        pid_file = self.data_dir / REDIS_PID_FILE
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return False
        if not _process_named(pid, "redis-server") or not _works_in(pid, self.data_dir):
            pid_file.unlink(missing_ok=True)
            return False
        logger.warning("stopping the Redis server (pid %d) a previous run left", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _process_named(pid, "redis-server") and time.monotonic() < deadline:
            time.sleep(0.05)
        if _process_named(pid, "redis-server"):
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        return True

    def stop(self) -> None:
        """Terminate the server."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None


def _works_in(pid: int, directory: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == directory.resolve()
    except OSError:
        return False


class DataDirInUseError(ServiceStartError):
    """Another live ``order-router run`` uses the data directory."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold ``<data_dir>/run.lock`` for the life of a run.

    The kernel releases an ``flock`` when its process dies, even by SIGKILL, so holding the lock
    proves that no other run is alive on this directory: any server found running there is an
    orphan of a killed run and may be reclaimed.

    Raises
    ------
    DataDirInUseError
        When another live process holds the lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise DataDirInUseError(
                f"another order-router run (pid {owner}) uses {data_dir}: stop it first"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class Watchdog:
    """Restarts embedded servers that die while a run is up (checked every ``interval_s``).

    Parameters
    ----------
    services
        ``(name, is_alive, restart)`` of each server.
    interval_s
        Time between checks.
    """

    def __init__(
        self,
        services: list[tuple[str, Callable[[], bool], Callable[[], object]]],
        *,
        interval_s: float = 1.0,
    ) -> None:
        self._services = services
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self.restarts: dict[str, int] = {name: 0 for name, _, _ in services}

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (before the servers are stopped on purpose)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            for name, alive, restart in self._services:
                if self._stop.is_set() or alive():
                    continue
                logger.error("%s died; restarting it", name)
                try:
                    restart()
                except ServiceStartError:  # tried again on the next tick
                    logger.exception("%s could not be restarted", name)
                    continue
                self.restarts[name] += 1
                logger.warning("%s restarted", name)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def database_name(url: str) -> str:
    """The database a ``postgresql://`` URL points at."""
    return urlsplit(url).path.lstrip("/")


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A new database on ``admin_url``'s server, dropped afterwards; yields its URL.

    Parameters
    ----------
    admin_url
        A URL whose role may create databases.
    prefix
        Start of the random database name (tells tests, benches and templates apart).
    template
        URL of a database to copy (``CREATE DATABASE ... TEMPLATE``: a file copy, so a migrated
        template makes a migrated database in milliseconds); an empty database without it.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{database_name(template)}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
