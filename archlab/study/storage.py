"""Where a study's trials live: an optuna journal file or an RDB URL, opened safely.

Storage is an optuna journal file ``results/<study>/journal.log`` by default, or any optuna
storage URL (``postgresql://...``: many machines run ``archlab study run FILE --storage URL``
and share the queue). One optuna study per (study, scale), named ``<study>-<scale>``. A torn
last line of a journal file (a write cut short) is dropped, saved aside, on opening. Passwords
in URLs never reach a message: ``mask_url`` hides them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from archlab.study.errors import StudyError, StudyFileError

__all__ = [
    "GRACE_S",
    "HEARTBEAT_S",
    "connect",
    "default_storage",
    "is_url",
    "mask_url",
    "open_storage",
    "stored_attrs",
    "study_name",
]

HEARTBEAT_S = 60  # RDB storages: a RUNNING trial records a heartbeat this often ...
GRACE_S = 300  # ... and is failed as stale after this long without one
CONNECT_TIMEOUT_S = 10  # PostgreSQL: give up on an unreachable server after this long
CREATE_TRIES = 3  # attempts to open an RDB storage whose tables another machine is creating


def is_url(storage: str) -> bool:
    """Whether ``storage`` is a database URL (else it is the path of a journal file)."""
    return "://" in storage


def mask_url(url: str) -> str:
    """The storage URL with its password replaced by ``***`` (safe for logs and reports)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _scrub(text: str, url: str) -> str:
    """``text`` with any occurrence of the URL's password masked."""
    password = urllib.parse.urlsplit(url).password if is_url(url) else None
    if password:
        text = text.replace(password, "***").replace(urllib.parse.quote(password), "***")
    return text


def default_storage(name: str, results_dir: str | Path = "results") -> str:
    """The journal file of a study: ``results/<name>/journal.log``."""
    return str(Path(results_dir) / name / "journal.log")


def study_name(name: str, scale: str) -> str:
    """The optuna study of a study at a scale: ``<name>-<scale>``."""
    return f"{name}-{scale}"


def open_storage(url: str) -> BaseStorage:
    """An optuna storage: a journal file for a path, optuna's RDB storage for a URL."""
    if not is_url(url):
        return _open_journal(Path(url))
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # libpq waits out TCP's timeout (minutes) on an unreachable host: fail within seconds
        engine["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    import sqlalchemy.exc

    for attempt in range(1, CREATE_TRIES + 1):
        try:
            with warnings.catch_warnings():  # heartbeat_interval: experimental, printed otherwise
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            # Machines started together on a fresh database race to create optuna's tables;
            # the losers get a unique violation and find the tables made on the next try.
            if attempt == CREATE_TRIES:
                raise StudyFileError(_storage_error(url, e)) from None
            time.sleep(attempt)
        except Exception as e:
            raise StudyFileError(_storage_error(url, e)) from None
    raise AssertionError("unreachable")


def _storage_error(url: str, e: Exception) -> str:
    # driver errors may echo the URL: never let its password out
    return f"--storage {mask_url(url)}: cannot open: {_scrub(str(e), url).splitlines()[0]}"


def connect(
    url: str,
    name: str,
    *,
    directions: Sequence[str] | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> tuple[optuna.Study, BaseStorage]:
    """(study, its storage): created when ``directions`` are given, else it must exist."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    if directions is not None:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=list(directions),
            sampler=sampler,
            load_if_exists=True,
        )
        return study, storage
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler), storage
    except KeyError:
        known = sorted(s.study_name for s in storage.get_all_studies())
        raise StudyError(
            f"no study {name!r} in {mask_url(url)}; stored: {', '.join(known) or '(none)'}"
        ) from None


def stored_attrs(url: str, name: str) -> dict[str, Any]:
    """The user attrs of a stored study; {} if there is none (nothing is created to find out)."""
    if not is_url(url) and not Path(url).exists():
        return {}
    for s in open_storage(url).get_all_studies():
        if s.study_name == name:
            return dict(s.user_attrs)
    return {}


# --- journal files -------------------------------------------------------------------------------


def _open_journal(path: Path) -> JournalStorage:
    """The journal file storage, its torn last line (if any) dropped; one-line errors."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path))
        _drop_torn_tail(path)
        return JournalStorage(backend)
    except OSError as e:
        raise StudyError(f"{path}: cannot open the study journal: {e.strerror or e}") from None
    except ValueError as e:  # optuna's replay: an undecodable line before the last one
        raise StudyError(
            f"{path}: corrupt journal at line {_bad_line(path)} ({e}); the lines before it are "
            "intact: keep a copy, cut the file there and rerun to resume"
        ) from None


def _torn(path: Path) -> bool:
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _drop_torn_tail(path: Path) -> None:
    """Cut a torn last line (a write cut short by a crash or a full disk) off a journal."""
    # optuna skips such a line when reading but appends the next entry to it, which makes one
    # undecodable line that breaks every later read. Writers append under the journal's lock,
    # so under that lock whatever follows the last newline is a dead write.
    if not _torn(path):
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        if not _torn(path):
            return
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        kept = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        kept.write_bytes(data[keep:])
        with open(path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
    finally:
        lock.release()
    print(
        f"archlab: warning: {path}: dropped a torn last entry ({len(data) - keep} bytes, saved "
        f"to {kept.name}) left by an interrupted write; every complete entry is kept",
        file=sys.stderr,
    )


def _bad_line(path: Path) -> int:
    """The number of the first line of a journal that is not a JSON entry."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                json.loads(line)
            except ValueError:
                return number
    return 0
