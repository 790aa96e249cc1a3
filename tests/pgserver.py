"""A throwaway PostgreSQL server on loopback for the multi-machine storage tests."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

PASSWORD = "s3cret-pw"  # tests check that it never leaks into logs, results or reports


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    # postgres refuses to run as root; CI runs as root, so drop to the packaged 'postgres' user
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start initdb + postgres in a temp dir; yield a URL with a password; stop and clean up."""
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as e:
            raise RuntimeError("running as root and there is no 'postgres' user") from e
        user = "postgres"
    root = tempfile.mkdtemp(prefix="archlab-pg-")
    data, pwfile = os.path.join(root, "data"), os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write(PASSWORD)
    if user:
        info = pwd.getpwnam(user)
        for p in (root, pwfile):
            os.chown(p, info.pw_uid, info.pw_gid)
    port = _free_port()
    run = dict(check=True, capture_output=True, timeout=120)
    subprocess.run(
        _as_user(
            user,
            [
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                "archlab",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
            ],
        ),
        **run,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_user(
            user, [f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", f"{root}/log", "-w", "start"]
        ),
        **run,
    )
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run(
            [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "archlab", "studies"],
            env=env,
            **run,
        )
        yield f"postgresql://archlab:{PASSWORD}@127.0.0.1:{port}/studies"
    finally:
        subprocess.run(
            _as_user(user, [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
