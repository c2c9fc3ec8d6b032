"""A throwaway PostgreSQL server on loopback, for tests and the local lab.

``start_postgres(directory)`` runs ``initdb`` (unless the data directory is
already initialised) and starts ``postgres`` listening on 127.0.0.1 only, on a
free port, with its unix socket in the data directory. PostgreSQL refuses to
run as root, so when we are root the server runs as an unprivileged system user
(``postgres``, created if missing). That user must be able to reach the data
directory: when ``directory`` sits under a folder it cannot enter (pytest's
``/tmp/pytest-of-root`` is 0700), the data goes to a private folder under the
system temp dir instead, removed again by ``stop()``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rootloop.errors import PlatformError
from rootloop_lab.servers.ports import free_port
from rootloop_lab.servers.process import stop_escalating

DEBIAN_PACKAGE = "postgresql-15"
DEFAULT_USER = "postgres"  # the database superuser created by initdb
SYSTEM_USER = "postgres"  # the OS user the server runs as when we are root
_SOCKET_MAX = 100  # sun_path is 108 bytes; keep margin for "/.s.PGSQL.NNNNN"


@dataclass
class PostgresServer:
    """A running server. ``dsn`` reaches the default database as the superuser."""

    host: str
    port: int
    user: str
    database: str
    data_dir: Path
    log_file: Path
    max_connections: int
    pg_stat_statements: bool
    password: str | None = None
    socket_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _remove_on_stop: Path | None = field(default=None, repr=False)

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def dsn_for(self, database: str, *, application_name: str | None = None) -> str:
        auth = self.user if self.password is None else f"{self.user}:{self.password}"
        dsn = f"postgresql://{auth}@{self.host}:{self.port}/{database}"
        if application_name:
            dsn += f"?application_name={application_name}"
        return dsn

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL."""
        stop_escalating(
            self.process, ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))
        )
        self.process = None
        if self._remove_on_stop is not None:
            shutil.rmtree(self._remove_on_stop, ignore_errors=True)
            self._remove_on_stop = None

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bin_dir() -> Path:
    """Where ``initdb`` and ``postgres`` live: pg_config, the Debian path, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "postgres").is_file():
            return c
    raise PlatformError(
        "PostgreSQL server binaries (initdb, postgres) not found",
        f"install them: apt-get install {DEBIAN_PACKAGE}",
    )


def has_pg_stat_statements() -> bool:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return False
    try:
        share = subprocess.run(
            [pg_config, "--sharedir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return (Path(share) / "extension" / "pg_stat_statements.control").is_file()


def start_postgres(
    directory: str | Path,
    *,
    port: int | None = None,
    max_connections: int = 100,
    user: str = DEFAULT_USER,
    password: str | None = None,
    database: str = "postgres",
    settings: dict[str, str | int] | None = None,
    durable: bool = False,
    timeout: float = 60.0,
) -> PostgresServer:
    """Start a server whose data lives in ``directory/pgdata``; wait until it accepts queries.

    ``durable=False`` (the default) turns fsync off: fine for throwaway data, much
    faster on a small machine. ``settings`` are extra ``-c name=value`` parameters.
    """
    if max_connections < 5:
        raise PlatformError(
            f"max_connections={max_connections} is too small",
            "PostgreSQL needs at least 5 (3 are reserved for superusers)",
        )
    bindir = bin_dir()
    runas = _run_as()
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    data_dir, remove = _data_dir(directory, runas)
    preload = has_pg_stat_statements()
    try:
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bindir, data_dir, runas, user, password)
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            srv = _launch(
                bindir,
                data_dir,
                runas,
                port or free_port(),
                max_connections,
                user,
                password,
                database,
                settings or {},
                durable,
                preload,
            )
            srv._remove_on_stop = remove
            try:
                _wait_ready(srv, timeout)
            except _PortTaken:
                srv._remove_on_stop = None
                srv.stop()
                if attempt + 1 == attempts:
                    raise PlatformError(
                        f"PostgreSQL could not bind port {srv.port}",
                        "the port is in use; pass another one",
                    ) from None
                continue
            except BaseException:
                srv.stop()
                raise
            if preload:
                _create_extension(srv)
            return srv
    except BaseException:
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)
        raise
    raise AssertionError("unreachable")  # pragma: no cover


# -- internals ----------------------------------------------------------------


@dataclass
class _RunAs:
    uid: int
    gid: int
    name: str

    @property
    def switch(self) -> bool:
        return self.uid != os.geteuid()

    def process_user(self) -> dict[str, Any]:
        """``subprocess`` arguments that run a child as this user (none when we are it)."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


class _PortTaken(Exception):
    pass


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name)
    try:
        pw = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise PlatformError(
                f"no '{SYSTEM_USER}' system user to run PostgreSQL as",
                f"create one: useradd --system {SYSTEM_USER}",
            ) from None
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            capture_output=True,
            check=False,
            timeout=30,
        )
        try:
            pw = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PlatformError(
                f"could not create the '{SYSTEM_USER}' system user",
                f"create it: useradd --system {SYSTEM_USER}",
            ) from None
    return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name)


def _reachable_by(path: Path, runas: _RunAs) -> bool:
    """Can ``runas`` enter every folder from / down to ``path``?"""
    if not runas.switch:
        return True
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        if st.st_uid == runas.uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == runas.gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def _data_dir(directory: Path, runas: _RunAs) -> tuple[Path, Path | None]:
    if _reachable_by(directory, runas):
        data, remove = directory / "pgdata", None
        data.mkdir(mode=0o700, exist_ok=True)
    else:
        remove = Path(tempfile.mkdtemp(prefix="rootloop-pg-"))
        os.chmod(remove, 0o711)
        data = remove / "pgdata"
        data.mkdir(mode=0o700)
        with contextlib.suppress(OSError):  # a pointer for whoever looks in ``directory``
            (directory / "pgdata.location").write_text(f"{data}\n")
    if runas.switch:
        os.chown(data, runas.uid, runas.gid)
    os.chmod(data, 0o700)
    return data, remove


def _env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }


def _run(runas: _RunAs, cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    kw = runas.process_user()
    return subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def _initdb(bindir: Path, data: Path, runas: _RunAs, user: str, password: str | None) -> None:
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        user,
        "--no-locale",
        "--encoding=UTF8",
        "--no-instructions",
        "--auth-local=trust",
    ]
    pwfile: Path | None = None
    if password is None:
        cmd.append("--auth-host=trust")
    else:
        pwfile = data.parent / f".pwfile-{os.getpid()}"
        pwfile.write_text(password + "\n")
        if runas.switch:
            os.chown(pwfile, runas.uid, runas.gid)
        os.chmod(pwfile, 0o600)
        cmd += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    try:
        res = _run(runas, cmd, data.parent, timeout=180)
    finally:
        if pwfile is not None:
            pwfile.unlink(missing_ok=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip()[-800:]
        raise PlatformError(f"initdb failed in {data}: {tail}")


def _launch(
    bindir: Path,
    data: Path,
    runas: _RunAs,
    port: int,
    max_connections: int,
    user: str,
    password: str | None,
    database: str,
    settings: dict[str, str | int],
    durable: bool,
    preload: bool,
) -> PostgresServer:
    sock_ok = len(str(data)) + len("/.s.PGSQL.65535") < _SOCKET_MAX
    params: dict[str, str | int] = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": str(data) if sock_ok else "",
        "max_connections": max_connections,
        "superuser_reserved_connections": min(3, max_connections - 2),
        "logging_collector": "off",
        "track_activity_query_size": 4096,
    }
    if preload:
        params["shared_preload_libraries"] = "pg_stat_statements"
        params["pg_stat_statements.track"] = "all"
    if not durable:
        params.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    params.update(settings)
    cmd = [str(bindir / "postgres"), "-D", str(data)]
    for k, v in params.items():
        cmd += ["-c", f"{k}={v}"]
    log_file = data.parent / "postgres.log"
    kw = runas.process_user()
    with open(log_file, "ab") as log:
        if runas.switch:
            os.chown(log_file, runas.uid, runas.gid)
        proc = subprocess.Popen(
            cmd,
            cwd=data,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )
    return PostgresServer(
        host="127.0.0.1",
        port=port,
        user=user,
        database=database,
        data_dir=data,
        log_file=log_file,
        max_connections=max_connections,
        pg_stat_statements=preload,
        password=password,
        socket_dir=data if sock_ok else None,
        process=proc,
    )


def _log_tail(srv: PostgresServer, n: int = 1500) -> str:
    try:
        return srv.log_file.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


def _wait_ready(srv: PostgresServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        assert srv.process is not None
        if srv.process.poll() is not None:
            tail = _log_tail(srv)
            if "could not bind" in tail or "Address already in use" in tail:
                raise _PortTaken
            raise PlatformError(
                f"PostgreSQL exited with code {srv.process.returncode} "
                f"before it was ready; log {srv.log_file}: {tail[-600:]}"
            )
        try:
            with psycopg.connect(
                srv.dsn_for("postgres"), connect_timeout=2, autocommit=True
            ) as conn:
                row = conn.execute("SELECT current_setting('data_directory')").fetchone()
                if row is None or Path(row[0]) != srv.data_dir:
                    raise _PortTaken  # another server answers on this port
                if srv.database != "postgres":
                    _ensure_database(conn, srv.database)
            return
        except psycopg.OperationalError as exc:
            last = str(exc).strip()
        time.sleep(0.1)
    raise PlatformError(
        f"PostgreSQL on port {srv.port} was not ready after {timeout:g}s: "
        f"{last}; log {srv.log_file}"
    )


def _ensure_database(conn: psycopg.Connection, name: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _create_extension(srv: PostgresServer) -> None:
    """In template1 too, so every database created later has the view."""
    for db in dict.fromkeys(("template1", srv.database)):
        with psycopg.connect(srv.dsn_for(db), connect_timeout=5, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
