"""The run store: every run kept on disk, indexed by SQLite, safe to crash at any moment.

Layout of the data directory (``$LAB_DATA_DIR``, default ``./.lab-data``)::

    index.sqlite          the index (stdlib sqlite3, WAL mode): one row per run, result links, notices
    runs/<run_id>/        a run's files: persistence.run_files (config.json, run.json, history.csv,
                          metrics.json, weights.safetensors - JSON, CSV and safetensors, never a pickle),
                          store.json (what the index row says, for a human), added_points.json (points
                          added by clicking on the Data page, when any)
                          and meta.json (owner, label, star, result links and the files' sizes and
                          sha256: what the index row needs, so a lost index can be rebuilt)
    sweeps/<sweep_id>/    a saved sweep: summary.json (self-checking: its sha256 inside) and meta.json
    csv/<sha256>.csv      uploaded CSV files, stored once by content hash
    tmp/                  runs being written; anything here at start-up is a leftover and is removed
    lock                  an flock(2) file: saves hold it shared, the orphan clean-up exclusive

Contracts
---------
- **Atomic saves.** A run's files are written to ``tmp/<id>/`` and fsynced, the folder is renamed to
  ``runs/<id>/`` (and ``runs/`` fsynced), and only then is the index row committed.  A run is listed
  only when its row exists, so a crash or ``kill -9`` at any point leaves either a complete listed
  run or an unlisted leftover, never a listed run that cannot be opened.  Deleting removes the row
  first, then the folder.  Start-up removes leftovers (temp folders, run folders without a row,
  unreferenced CSVs) when no other process is saving (the exclusive lock is free).
- **Damage is reported, not raised.**  The index keeps every file's size and sha256.  Start-up
  compares sizes (a stat per file, no reads); :meth:`RunStore.load` checks every byte it reads.
  A missing, truncated or changed file marks the run ``damaged`` (with the reason) in the index;
  listing never reads run files.
- **Bounded loading.**  Loading reuses :mod:`ensemble_core.persistence`'s checked reader: every
  file's size against what the run's config implies, the safetensors header before the model.
- **Unavailable, not crashing.**  When the directory cannot be written (read-only, disk full, the
  index locked by another program, an index of a newer schema) :attr:`RunStore.available` is
  False and :attr:`RunStore.why` says why; saves raise :class:`StoreUnavailable`, reads return
  nothing or raise :class:`StoreError`.  A later successful save makes it available again.
- **Retention.**  After each save, an owner's oldest unstarred runs are pruned beyond
  ``max_runs_per_owner``, then everyone's oldest unstarred runs while the store is over
  ``max_total_bytes``; the run just saved is never pruned, nor is a starred one.  Each pruned run
  leaves a notice for its owner (:meth:`RunStore.pruned_notice`).
- **Isolation.**  Every method that names a run takes the owner and acts only on that owner's
  runs; another owner's run is "not found" (its existence is not revealed).  Result links are
  ``secrets.token_urlsafe(24)`` (192 bits) and are stored in the index, so they survive restarts.
- **The index can be rebuilt.**  Every run and sweep folder holds a ``meta.json`` with what its
  index row needs (written with the run's files, and rewritten atomically - temp file + rename -
  by rename, star, share and revoke).  When ``index.sqlite`` is missing, not an SQLite file or fails
  ``PRAGMA quick_check``, start-up moves a damaged one aside (``index.sqlite.corrupt-<time>``, never
  deleted) and re-indexes every folder; a folder whose files were damaged is listed as damaged, one
  whose owner cannot be read is kept under the owner ``"recovered"``.  Start-up likewise re-indexes a
  complete folder the index lacks (it is never deleted as an orphan); only temp folders and folders
  whose ``meta.json`` is a deletion tombstone (written before the index row is deleted) are removed.
  The rebuild holds the ``lock`` file exclusively, so two stores starting at once index each folder once.
- **Sweeps** (:meth:`RunStore.save_sweep`) are kept like runs: their own table and folder, result
  links, retention (at most :data:`MAX_SWEEPS_PER_OWNER` per owner), the disk cap and the rebuild.
- **Threads.**  One SQLite connection per store guarded by a lock (the Streamlit server runs many
  threads); file writes happen outside the lock.  Other processes (the CLI) coordinate through
  SQLite's own locking (busy timeout) and the ``lock`` file.

Test hook: ``LAB_STORE_CRASH_AT=<step>`` (read at import) makes :meth:`RunStore.save` kill its own
process with SIGKILL at that step (see :data:`CRASH_STEPS`), to test crash safety.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
import sqlite3
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import persistence
from .config import ConfigError, RunConfig
from .data import MAX_CSV_BYTES, DataError, Dataset, add_training_point, describe, load_dataset
from .run import Run

try:  # POSIX only; elsewhere the orphan clean-up runs without the cross-process guard
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "SCHEMA_VERSION",
    "CRASH_STEPS",
    "StoreError",
    "StoreUnavailable",
    "RunRecord",
    "RunStore",
    "SweepRecord",
    "RECOVERED_OWNER",
    "MAX_SWEEP_BYTES",
    "MAX_SWEEPS_PER_OWNER",
]

DATA_DIR_ENV = "LAB_DATA_DIR"
DEFAULT_DATA_DIR = "./.lab-data"
#: Environment variables read by :meth:`RunStore.default` for the retention caps.
MAX_RUNS_ENV = "LAB_MAX_RUNS_PER_OWNER"
MAX_MB_ENV = "LAB_MAX_STORE_MB"
#: The index's schema (``PRAGMA user_version``); a newer one makes the store unavailable.
SCHEMA_VERSION = 2
#: Owner of a rebuilt run or sweep whose owner cannot be read: no browser identity has this value.
RECOVERED_OWNER = "recovered"
#: Largest sweep summary :meth:`RunStore.save_sweep` keeps (its JSON, encoded).
MAX_SWEEP_BYTES = 4_000_000
#: Retention: sweeps kept per owner (the oldest by last update are dropped, with a notice).
MAX_SWEEPS_PER_OWNER = 100
SWEEP_STATUSES = ("running", "done", "stopped")
#: The steps of a save at which ``LAB_STORE_CRASH_AT`` can kill the process ("wrote <file>" too).
CRASH_STEPS = ("start", "csv written", "files written", "renamed", "indexed", "pruned")
_CRASH_AT = os.environ.get("LAB_STORE_CRASH_AT", "")
SOURCES = ("train", "lesson", "compare", "sweep", "cli", "import")
_STORE_FILE = "store.json"
_POINTS_FILE = "added_points.json"
_META_FILE = "meta.json"
_SUMMARY_FILE = "summary.json"
_MAX_META_BYTES = 2_000_000
_MAX_RUN_IDS = 10_000
_MAX_LABEL = 200
_MAX_OWNER = 200
_MAX_ERROR = 2_000
_MAX_POINTS = 1_000
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class StoreError(RuntimeError):
    """A run cannot be found, opened or changed; the message is for a human."""


class StoreUnavailable(StoreError):
    """The store cannot be written (read-only, disk full, locked, newer schema); the message says which."""


@dataclass(frozen=True)
class RunRecord:
    """One stored run, as the index lists it (no file is read to build it).

    Attributes:
        run_id: unguessable url-safe id (``secrets.token_urlsafe(16)``).
        owner: the identity that saved it (a browser's token; ``"cli"`` for the CLI).
        created: unix seconds when it was saved (the end of the run).
        label: the user's label (``""`` by default).
        starred: starred runs are never pruned.
        status: ``"done"``, ``"stopped"`` or ``"failed"``.
        source: ``"train"``, ``"lesson"``, ``"compare"``, ``"sweep"``, ``"cli"`` or ``"import"``.
        dataset: short human name of the data (``data.describe`` of the spec, or the caller's name).
        strategy: ``config.strategy.kind``.
        members: ensemble members (the config's ensemble size for a failed run).
        epochs: epochs done (0 for a failed run).
        task: ``"regression"`` or ``"classification"`` (``""`` for a failed run whose task is unknown).
        test_nll, test_rmse, test_accuracy: test-set metrics in original units, when there were any.
        seconds: training seconds (None for a failed run).
        bytes: the run's size on disk (its shared CSV not counted).
        damaged: None, or why the run's files cannot be opened.
        error: failed runs: the user-facing error message.
        shared: a result link exists and is not revoked.
        note: None, or what was not kept (e.g. a CSV over the size cap, so the run opens without data).
    """

    run_id: str
    owner: str
    created: float
    label: str
    starred: bool
    status: str
    source: str
    dataset: str
    strategy: str
    members: int
    epochs: int
    task: str
    test_nll: float | None
    test_rmse: float | None
    test_accuracy: float | None
    seconds: float | None
    bytes: int
    damaged: str | None
    error: str | None
    shared: bool
    note: str | None = None


@dataclass(frozen=True)
class SweepRecord:
    """One saved sweep, as the index lists it.

    Attributes:
        sweep_id: unguessable url-safe id (``secrets.token_urlsafe(16)``).
        owner: the identity that saved it.
        created, updated: unix seconds of the first and the last save.
        label: the sweep's label (the summary's ``"label"``, ``""`` by default).
        task: ``"regression"`` or ``"classification"`` (``""`` when the summary does not say).
        metric: the metric it ranks by, e.g. ``"test_nll"``.
        n_trials, n_done: trials planned and finished.
        status: ``"running"``, ``"done"`` or ``"stopped"``.
        shared: a result link exists and is not revoked.
        damaged: None, or why its saved summary cannot be opened.
    """

    sweep_id: str
    owner: str
    created: float
    updated: float
    label: str
    task: str
    metric: str
    n_trials: int
    n_done: int
    status: str
    shared: bool
    damaged: str | None = None


_SWEEP_COLUMNS = ("sweep_id", "owner", "created", "updated", "label", "task", "metric", "n_trials", "n_done",
                  "status", "shared", "damaged")
_SWEEP_SELECT = f"SELECT {', '.join(_SWEEP_COLUMNS)} FROM sweeps"

_COLUMNS = ("run_id", "owner", "created", "label", "starred", "status", "source", "dataset", "strategy",
            "members", "epochs", "task", "test_nll", "test_rmse", "test_accuracy", "seconds", "bytes",
            "damaged", "error", "shared", "note")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM runs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL, label TEXT NOT NULL,
    starred INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, source TEXT NOT NULL, dataset TEXT NOT NULL,
    strategy TEXT NOT NULL, members INTEGER NOT NULL, epochs INTEGER NOT NULL, task TEXT NOT NULL,
    test_nll REAL, test_rmse REAL, test_accuracy REAL, seconds REAL, bytes INTEGER NOT NULL,
    damaged TEXT, error TEXT, shared INTEGER NOT NULL DEFAULT 0, note TEXT,
    csv_sha TEXT, files TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_owner_created ON runs(owner, created);
CREATE INDEX IF NOT EXISTS runs_prune ON runs(starred, created);
CREATE TABLE IF NOT EXISTS csvs(sha TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS links(token TEXT PRIMARY KEY, run_id TEXT NOT NULL, owner TEXT NOT NULL, created REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS links_run ON links(run_id);
CREATE TABLE IF NOT EXISTS notices(id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, created REAL NOT NULL,
    text TEXT NOT NULL);
"""
# schema 2 (issue 19): saved sweeps and their result links
_SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS sweeps(
    sweep_id TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    label TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL, n_trials INTEGER NOT NULL,
    n_done INTEGER NOT NULL, status TEXT NOT NULL, shared INTEGER NOT NULL DEFAULT 0, damaged TEXT,
    bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sweeps_owner_updated ON sweeps(owner, updated);
CREATE TABLE IF NOT EXISTS sweep_links(token TEXT PRIMARY KEY, sweep_id TEXT NOT NULL, owner TEXT NOT NULL,
    created REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sweep_links_sweep ON sweep_links(sweep_id);
"""


def _crash_point(step: str) -> None:
    """Test hook: SIGKILL this process at ``step`` when ``LAB_STORE_CRASH_AT`` names it."""
    if _CRASH_AT and _CRASH_AT == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


_FSYNC_POOL: ThreadPoolExecutor | None = None
_FSYNC_POOL_LOCK = threading.Lock()


def _fsync_all(fds: list[int]) -> None:
    """fsync several files at once: the file system commits them together (6 files: ~4 ms, not ~55 ms)."""
    global _FSYNC_POOL
    if len(fds) < 2:
        for fd in fds:
            os.fsync(fd)
        return
    with _FSYNC_POOL_LOCK:
        if _FSYNC_POOL is None:
            _FSYNC_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="store-fsync")
        pool = _FSYNC_POOL
    for future in [pool.submit(os.fsync, fd) for fd in fds]:
        future.result()


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder`` and make them durable (every file, then the folder, fsynced)."""
    handles = []
    try:
        for name, data in files.items():
            f = open(folder / name, "wb")  # noqa: SIM115 - closed below, after the fsyncs
            handles.append(f)
            f.write(data)
            f.flush()
            _crash_point(f"wrote {name}")
        _fsync_all([f.fileno() for f in handles])
    finally:
        for f in handles:
            f.close()
    _fsync_dir(folder)


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _describe_os_error(exc: BaseException, root: Path) -> str:
    """Why the store cannot be written, for a person."""
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        if "locked" in text or "busy" in text:
            return f"the run index {root / 'index.sqlite'} is locked by another program"
        if "readonly" in text or "read-only" in text:
            return f"the data folder {root} is read-only"
        if "full" in text:
            return f"the disk holding {root} is full"
        if "not a database" in text or "malformed" in text:
            return "the run index (index.sqlite in the data folder) is damaged (not a valid SQLite file)"
        return f"the run index {root / 'index.sqlite'} cannot be used ({text})"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"the disk holding {root} is full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"the data folder {root} is read-only"
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            return f"{root} is not a folder"
        return f"the data folder {root} cannot be written ({exc.strerror or exc})"
    return f"the data folder {root} cannot be used ({type(exc).__name__}: {exc})"


def _check_owner(owner: Any) -> str:
    if not isinstance(owner, str) or not 0 < len(owner) <= _MAX_OWNER:
        raise StoreError(f"owner must be a non-empty string of at most {_MAX_OWNER} characters")
    return owner


def _check_label(label: Any) -> str:
    if not isinstance(label, str):
        raise StoreError(f"a label must be text, got {type(label).__name__}")
    label = "".join(ch for ch in label if ch.isprintable()).strip()
    if len(label) > _MAX_LABEL:
        raise StoreError(f"a label can be at most {_MAX_LABEL} characters (this one has {len(label)})")
    return label


def _valid_id(run_id: Any) -> bool:
    return isinstance(run_id, str) and _ID.fullmatch(run_id) is not None


class _FileLock:
    """An flock(2) on the store's ``lock`` file: shared for saves, exclusive for clean-up and rebuilds.

    The exclusive lock is tried without blocking, retried for up to ``wait_s`` seconds.
    """

    def __init__(self, path: Path, exclusive: bool, wait_s: float = 0.0) -> None:
        self.path, self.exclusive, self.fd, self.held = path, exclusive, -1, False
        self.wait_s = wait_s

    def __enter__(self) -> _FileLock:
        if fcntl is None:  # pragma: no cover
            self.held = True
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if self.exclusive:
                deadline = time.monotonic() + self.wait_s
                while True:
                    try:
                        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise
                        time.sleep(0.02)
            else:
                fcntl.flock(self.fd, fcntl.LOCK_SH)
            self.held = True
        except BlockingIOError:
            self.held = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the lock
            self.fd = -1


_DEFAULTS: dict[tuple[Path, int, int], RunStore] = {}
_DEFAULTS_LOCK = threading.Lock()


def _env_int(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        warnings.warn(f"{name}={text[:40]!r} is not a whole number >= {minimum}; using {default}", stacklevel=3)
        return default
    return value


class RunStore:
    """Runs kept on disk: see the module docstring for the layout and the guarantees."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, max_runs_per_owner: int = 200,
                 max_total_bytes: int = 2_000_000_000, max_csv_bytes: int = 20_000_000,
                 busy_timeout_s: float = 5.0) -> None:
        """Open (creating if needed) the store at ``root``; never raises for an unusable location.

        Args:
            root: the data directory; None -> ``$LAB_DATA_DIR`` or ``./.lab-data`` (relative to the cwd).
            max_runs_per_owner: retention: runs kept per owner (starred runs are never pruned).
            max_total_bytes: retention: total size of the store's runs and CSVs.
            max_csv_bytes: largest uploaded CSV kept with a run (a larger one: the run is kept without it).
            busy_timeout_s: how long a write waits for another process's lock on the index.

        After construction :attr:`available` tells whether runs can be saved and :attr:`why` why not.
        Start-up also removes leftovers of interrupted saves and marks runs whose files lost bytes
        as damaged.
        """
        if root is None:
            root = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
        self.root = Path(root).expanduser().absolute()
        self.max_runs_per_owner = int(max_runs_per_owner)
        self.max_total_bytes = int(max_total_bytes)
        self.max_csv_bytes = int(max_csv_bytes)
        if self.max_runs_per_owner < 1 or self.max_total_bytes < 1 or self.max_csv_bytes < 0:
            raise ValueError("max_runs_per_owner and max_total_bytes must be positive, max_csv_bytes >= 0")
        self._busy_timeout_s = float(busy_timeout_s)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._why: str | None = None
        self._fatal = False  # an index this program cannot read (newer schema, not SQLite): no retry
        self._index_id: tuple[int, int] | None = None  # (device, inode) of the open index file
        self._runs, self._csv, self._tmp = self.root / "runs", self.root / "csv", self.root / "tmp"
        self._sweeps = self.root / "sweeps"
        #: None, or what start-up did to a damaged index (moved aside and rebuilt), for a person.
        self.index_note: str | None = None
        #: How many run and sweep folders the last start-up re-indexed (their index rows were missing).
        self.reindexed = 0
        self._open()

    # ------------------------------------------------------------ state
    @property
    def available(self) -> bool:
        """True when runs are being kept (the last attempt to open or write the store worked)."""
        return self._why is None

    @property
    def why(self) -> str | None:
        """None when :attr:`available`, else why runs are not being kept, for a person."""
        return self._why

    @classmethod
    def default(cls) -> RunStore:
        """The process-wide store for ``$LAB_DATA_DIR`` (created on first use; thread-safe).

        The retention caps come from ``$LAB_MAX_RUNS_PER_OWNER`` (default 200) and
        ``$LAB_MAX_STORE_MB`` (default 2,000); a different value gives a different instance.
        """
        root = Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser().absolute()
        max_runs = _env_int(MAX_RUNS_ENV, 200, 1)
        max_mb = _env_int(MAX_MB_ENV, 2_000, 1)
        key = (root, max_runs, max_mb)
        with _DEFAULTS_LOCK:
            store = _DEFAULTS.get(key)
            if store is None:
                store = _DEFAULTS[key] = cls(root, max_runs_per_owner=max_runs,
                                             max_total_bytes=max_mb * 1_000_000)
            return store

    def close(self) -> None:
        """Close the index connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _open(self) -> None:
        """Create the folders, open and check the index, clean up; on failure record why."""
        with self._lock:
            try:
                for d in (self.root, self._runs, self._csv, self._tmp, self._sweeps):
                    d.mkdir(parents=True, exist_ok=True)
                db = self.root / "index.sqlite"
                existed = db.exists()
                if not existed:
                    self._set_aside_stale_wal(db)
                conn = sqlite3.connect(db, timeout=self._busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            except (OSError, sqlite3.Error) as exc:
                self._why = _describe_os_error(exc, self.root)
                return
            try:
                problem = self._prepare(conn)
            except (OSError, sqlite3.Error) as exc:
                conn.close()
                if not (_is_corrupt(exc) and self._move_aside(db)):
                    self._why = _describe_os_error(exc, self.root)
                    self._fatal = _is_corrupt(exc)
                    return
                try:  # a fresh index; the clean-up below re-indexes the folders
                    conn = sqlite3.connect(db, timeout=self._busy_timeout_s, isolation_level=None,
                                           check_same_thread=False)
                    problem = self._prepare(conn)
                except (OSError, sqlite3.Error) as exc2:
                    self._why = _describe_os_error(exc2, self.root)
                    return
            if problem:
                conn.close()
                self._why, self._fatal = problem, True
                return
            self._conn, self._why = conn, None
            self._index_id = _file_id(db)
        try:
            self._clean_up(index_existed=existed)
            self._scan()
            self._scan_sweeps()
        except (OSError, sqlite3.Error) as exc:
            self._why = _describe_os_error(exc, self.root)

    def _prepare(self, conn: sqlite3.Connection) -> str | None:
        """WAL mode and the schema; returns why the index cannot be used, or None."""
        # The version and the tables from one snapshot: another store starting at once may create the index
        # between two separate reads (its tables and version land in one transaction).
        conn.execute("BEGIN")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        finally:
            conn.execute("COMMIT")
        if version > SCHEMA_VERSION:
            return (f"the run index {self.root / 'index.sqlite'} was written by a newer version of the lab "
                    f"(schema {version}; this one reads schema {SCHEMA_VERSION}); use a newer lab or another "
                    f"{DATA_DIR_ENV}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            return f"the run index {self.root / 'index.sqlite'} cannot use write-ahead logging (mode {mode})"
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process never loses a commit
        conn.execute("PRAGMA foreign_keys=OFF")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if str(check).lower() != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed (quick_check: {str(check)[:200]})")
        if version == 1:  # schema 1 -> 2: add the sweep tables (idempotent: two processes may both migrate)
            conn.executescript("BEGIN IMMEDIATE;\n" + _SCHEMA_2 + f"PRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
        if version == 0:
            if tables:  # a transaction sets the tables and the version together: this file is not ours
                return (f"{self.root / 'index.sqlite'} is an SQLite file but not a run index of this lab "
                        f"(no schema version); move it away or choose another {DATA_DIR_ENV}")
            # idempotent, so two processes creating the index at once both succeed
            conn.executescript("BEGIN IMMEDIATE;\n" + _SCHEMA + _SCHEMA_2
                               + f"PRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
        return None

    def _reopen_if_replaced(self) -> None:
        """Close the connection when index.sqlite was deleted or replaced under it (the next use reopens,
        and a missing index is rebuilt from the folders); one stat per use."""
        if self._conn is not None and _file_id(self.root / "index.sqlite") != self._index_id:
            self._conn.close()
            self._conn = None

    def _set_aside_stale_wal(self, db: Path) -> None:
        """Before creating a new index: move -wal/-shm files a deleted index left behind out of the way
        (SQLite would replay that old log into the new file).  Under the exclusive lock, checked again."""
        wal = Path(f"{db}-wal")
        if not wal.exists() and not Path(f"{db}-shm").exists():
            return
        with _FileLock(self.root / "lock", exclusive=True, wait_s=min(self._busy_timeout_s, 2.0)) as lock:
            if not lock.held or db.exists():
                return
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            for suffix in ("-wal", "-shm"):
                extra = Path(f"{db}{suffix}")
                if extra.exists():
                    os.replace(extra, self.root / f"index.sqlite{suffix}.stale-{stamp}-{secrets.token_hex(2)}")

    def _move_aside(self, db: Path) -> bool:
        """Move a damaged index (and its WAL files) to ``index.sqlite.corrupt-<time>``; True when done.

        Holds the ``lock`` file exclusively, and first checks again: another process may have moved
        it and built a fresh one meanwhile.  The old file is kept for a person to look at.
        """
        try:
            with _FileLock(self.root / "lock", exclusive=True, wait_s=self._busy_timeout_s) as lock:
                if not lock.held:
                    return False
                if not db.exists() or _index_usable(db):
                    return True
                stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
                aside = self.root / f"index.sqlite.corrupt-{stamp}"
                while aside.exists():
                    aside = self.root / f"index.sqlite.corrupt-{stamp}-{secrets.token_hex(2)}"
                os.replace(db, aside)
                for suffix in ("-wal", "-shm"):
                    extra = Path(f"{db}{suffix}")
                    if extra.exists():
                        os.replace(extra, Path(f"{aside}{suffix}"))
                _fsync_dir(self.root)
                self.index_note = (f"the run index was damaged; it was moved to {aside.name} and rebuilt "
                                   "from the run folders")
                return True
        except OSError:
            return False

    def _db(self) -> sqlite3.Connection:
        """The open connection (reopening after an earlier failure, unless the index is unreadable)."""
        self._reopen_if_replaced()
        if self._conn is None and not self._fatal:
            self._open()
        if self._conn is None:
            raise StoreUnavailable(f"runs are not being kept: {self._why}")
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction under the store's lock; database errors become :class:`StoreUnavailable`."""
        with self._lock:
            conn = self._db()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        self._why = _describe_os_error(exc, self.root)
        return StoreUnavailable(f"runs are not being kept: {self._why}")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query; an unusable index gives no rows (and :attr:`why` says why)."""
        with self._lock:
            self._reopen_if_replaced()
            if self._conn is None:
                if self._fatal:
                    return []
                self._open()
                if self._conn is None:
                    return []
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                self._why = _describe_os_error(exc, self.root)
                return []

    # ------------------------------------------------------------ start-up
    def _clean_up(self, *, index_existed: bool) -> None:
        """Remove leftovers of interrupted saves and deletes, and re-index folders the index lacks.

        Runs only when no other process is saving (the exclusive lock, waited for briefly).  A run
        or sweep folder without an index row is re-indexed from its ``meta.json`` (a lost or rebuilt
        index, or a save killed between its rename and its index row), never deleted; only a folder
        whose ``meta.json`` is a deletion tombstone is removed.  ``index_existed`` is kept for callers
        (a new index next to old folders is rebuilt the same way).
        """
        with _FileLock(self.root / "lock", exclusive=True, wait_s=min(self._busy_timeout_s, 2.0)) as lock:
            if not lock.held:
                return
            for p in self._tmp.iterdir():
                _remove(p)
            self.reindexed = self._reindex()
            with self._tx() as conn:
                conn.execute("DELETE FROM links WHERE run_id NOT IN (SELECT run_id FROM runs)")
                conn.execute("DELETE FROM sweep_links WHERE sweep_id NOT IN (SELECT sweep_id FROM sweeps)")
                conn.execute("DELETE FROM csvs WHERE sha NOT IN (SELECT csv_sha FROM runs WHERE csv_sha IS NOT NULL)")
            kept = {r[0] for r in self._read("SELECT sha FROM csvs")}
            for p in self._csv.iterdir():
                if p.suffix != ".csv" or p.stem not in kept:
                    _remove(p)

    def _reindex(self) -> int:
        """Index every run and sweep folder that has no index row (under the exclusive lock)."""
        known = {r[0] for r in self._read("SELECT run_id FROM runs")}
        known_sweeps = {r[0] for r in self._read("SELECT sweep_id FROM sweeps")}
        runs: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        sweeps: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for parent, seen, out, build in ((self._runs, known, runs, self._run_row_from_folder),
                                         (self._sweeps, known_sweeps, sweeps, self._sweep_row_from_folder)):
            for p in parent.iterdir():
                if p.name in seen or not _valid_id(p.name) or not p.is_dir() or p.is_symlink():
                    continue
                meta = _read_json(p / _META_FILE, _MAX_META_BYTES)
                if isinstance(meta, dict) and meta.get("deleted"):
                    _remove(p)  # deleted: the tombstone was written before the index row went
                    continue
                out.append(build(p, meta if isinstance(meta, dict) else None))
        if not runs and not sweeps:
            return 0
        with self._tx() as conn:
            for row, links in runs:
                conn.execute(f"INSERT OR IGNORE INTO runs({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
                for link in links:
                    conn.execute("INSERT OR IGNORE INTO links(token, run_id, owner, created, revoked) "
                                 "VALUES (?, ?, ?, ?, ?)", (link["token"], row["run_id"], row["owner"],
                                                            link["created"], link["revoked"]))
                if row["csv_sha"]:
                    path = self._csv / f"{row['csv_sha']}.csv"
                    if path.exists():
                        conn.execute("INSERT OR IGNORE INTO csvs(sha, bytes) VALUES (?, ?)",
                                     (row["csv_sha"], path.stat().st_size))
            for row, links in sweeps:
                conn.execute(f"INSERT OR IGNORE INTO sweeps({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
                for link in links:
                    conn.execute("INSERT OR IGNORE INTO sweep_links(token, sweep_id, owner, created, revoked) "
                                 "VALUES (?, ?, ?, ?, ?)", (link["token"], row["sweep_id"], row["owner"],
                                                            link["created"], link["revoked"]))
        return len(runs) + len(sweeps)

    def _run_row_from_folder(self, folder: Path, meta: dict[str, Any] | None
                             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The index row (and result links) of a run folder, from its meta.json and store.json.

        Whatever cannot be read gets a neutral value; the run is then marked damaged with the reason.
        Files listed in meta.json are checked byte for byte (size and sha256).
        """
        run_id = folder.name
        lost = None
        if meta is None:
            lost = ("its meta.json was " + ("unreadable" if (folder / _META_FILE).exists() else "missing")
                    + " when the index was rebuilt, so its label, star and result links were lost")
        info = _read_json(folder / _STORE_FILE, _MAX_META_BYTES)
        info = info if isinstance(info, dict) else {}
        meta = meta or {}
        problems: list[str] = []
        owner = _text(meta.get("owner")) or _text(info.get("owner")) or RECOVERED_OWNER
        if len(owner) > _MAX_OWNER:
            owner = RECOVERED_OWNER
        manifest = _manifest(meta.get("files"))
        if manifest is None:
            if meta:
                problems.append("its meta.json does not list its files")
            manifest = {}
            for f in sorted(folder.iterdir()):
                if f.is_file() and not f.name.startswith(".") and f.name != _META_FILE:
                    data = f.read_bytes()
                    manifest[f.name] = [len(data), hashlib.sha256(data).hexdigest()]
        else:
            why = self._content_problem(folder, manifest)
            if why:
                problems.append(why)
        if not info:
            problems.append("its store.json is missing or unreadable, so what it was is partly unknown")
        if "config.json" not in manifest:
            problems.append("its config.json is missing")
        status = info.get("status") if info.get("status") in ("done", "stopped", "failed") else (
            "done" if "weights.safetensors" in manifest else "failed")
        source = info.get("source") if info.get("source") in SOURCES else "import"
        created = _finite(meta.get("created")) or _finite(info.get("created"))
        if created is None:
            try:
                created = folder.stat().st_mtime
            except OSError:
                created = time.time()
        links = _links(meta.get("links"))
        csv_sha = meta.get("csv_sha") or info.get("csv_sha256")
        if not (isinstance(csv_sha, str) and re.fullmatch(r"[0-9a-f]{64}", csv_sha)):
            csv_sha = None
        row = dict(
            run_id=run_id, owner=owner, created=created, label=_clip(meta.get("label"), _MAX_LABEL),
            starred=1 if meta.get("starred") is True else 0, status=status, source=source,
            dataset=_clip(info.get("dataset"), 500) or "(unknown data)", strategy=_clip(info.get("strategy"), 80),
            members=_int(info.get("members")), epochs=_int(info.get("epochs")), task=_clip(info.get("task"), 40),
            test_nll=_finite(info.get("test_nll")), test_rmse=_finite(info.get("test_rmse")),
            test_accuracy=_finite(info.get("test_accuracy")), seconds=_finite(info.get("seconds")),
            bytes=sum(v[0] for v in manifest.values()) + _size(folder / _META_FILE),
            damaged=("; ".join(problems) if problems else None),
            error=_clip(info.get("error"), _MAX_ERROR) or None, shared=int(any(not k["revoked"] for k in links)),
            note="; ".join(n for n in (_clip(info.get("note"), _MAX_ERROR), lost) if n) or None,
            csv_sha=csv_sha, files=json.dumps(manifest))
        return row, links

    def _sweep_row_from_folder(self, folder: Path, meta: dict[str, Any] | None
                               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The index row (and result links) of a sweep folder, from its summary.json and meta.json."""
        meta = meta or {}
        body, why = _read_sweep_file(folder / _SUMMARY_FILE)
        head = body or {}
        owner = _text(head.get("owner")) or _text(meta.get("owner")) or RECOVERED_OWNER
        if len(owner) > _MAX_OWNER:
            owner = RECOVERED_OWNER
        try:
            size = (folder / _SUMMARY_FILE).stat().st_size
        except OSError:
            size = 0
        created = _finite(head.get("created")) or _finite(meta.get("created")) or time.time()
        links = _links(meta.get("links"))
        row = dict(
            sweep_id=folder.name, owner=owner, created=created, updated=_finite(head.get("updated")) or created,
            label=_clip(head.get("label"), _MAX_LABEL), task=_clip(head.get("task"), 40),
            metric=_clip(head.get("metric"), 40), n_trials=_int(head.get("n_trials")),
            n_done=_int(head.get("n_done")),
            status=head.get("status") if head.get("status") in SWEEP_STATUSES else "stopped",
            shared=int(any(not k["revoked"] for k in links)), damaged=why, bytes=size)
        return row, links

    def _content_problem(self, folder: Path, manifest: dict[str, list[Any]]) -> str | None:
        """Why a folder's files differ from their saved sizes and sha256 (reads them), or None."""
        for name, (size, sha) in manifest.items():
            try:
                with open(folder / name, "rb") as f:
                    data = f.read(size + 1)
            except FileNotFoundError:
                return f"its file {name} is missing from the store"
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror or exc})"
            if len(data) != size:
                return f"{name} is not {size:,} bytes as when it was saved (truncated or changed)"
            if hashlib.sha256(data).hexdigest() != sha:
                return f"{name} changed since it was saved (its content differs)"
        return None

    def _scan(self) -> None:
        """Mark runs whose files are missing or changed size as damaged (stat only, no reads)."""
        updates = []
        for run_id, files, damaged in self._read("SELECT run_id, files, damaged FROM runs"):
            why = self._stat_problem(run_id, json.loads(files))
            if why and why != damaged:
                updates.append((why, run_id))
        if updates:
            with self._tx() as conn:
                conn.executemany("UPDATE runs SET damaged=? WHERE run_id=?", updates)

    def _scan_sweeps(self) -> None:
        """Mark sweeps whose summary.json is missing or changed size as damaged (stat only)."""
        updates = []
        for sweep_id, size, damaged in self._read("SELECT sweep_id, bytes, damaged FROM sweeps"):
            try:
                got = (self._sweeps / sweep_id / _SUMMARY_FILE).stat().st_size
                why = None if got == size else (f"its summary is {got:,} bytes on disk but was {size:,} bytes "
                                                "when saved (truncated or changed)")
            except OSError:
                why = "its summary file is missing from the store"
            if why and why != damaged:
                updates.append((why, sweep_id))
        if updates:
            with self._tx() as conn:
                conn.executemany("UPDATE sweeps SET damaged=? WHERE sweep_id=?", updates)

    # ------------------------------------------------------------ meta.json (what a rebuild needs)
    def _run_meta(self, conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
        """meta.json of a run, from its index row and links (inside a transaction)."""
        row = conn.execute("SELECT owner, created, label, starred, source, csv_sha, files FROM runs WHERE run_id=?",
                           (run_id,)).fetchone()
        if row is None:
            return None
        links = conn.execute("SELECT token, created, revoked FROM links WHERE run_id=? ORDER BY created",
                             (run_id,)).fetchall()
        return _run_meta_dict(run_id, row[0], row[1], row[2], bool(row[3]), row[4], row[5], json.loads(row[6]),
                              [{"token": t, "created": c, "revoked": bool(r)} for t, c, r in links])

    def _sweep_meta(self, conn: sqlite3.Connection, sweep_id: str) -> dict[str, Any] | None:
        """meta.json of a sweep, from its index row and links (inside a transaction)."""
        row = conn.execute("SELECT owner, created FROM sweeps WHERE sweep_id=?", (sweep_id,)).fetchone()
        if row is None:
            return None
        links = conn.execute("SELECT token, created, revoked FROM sweep_links WHERE sweep_id=? ORDER BY created",
                             (sweep_id,)).fetchall()
        return {"format": "deep-ensemble-lab/sweep-meta", "version": SCHEMA_VERSION, "sweep_id": sweep_id,
                "owner": row[0], "created": row[1], "deleted": False,
                "links": [{"token": t, "created": c, "revoked": bool(r)} for t, c, r in links]}

    def _put_meta(self, folder: Path, meta: dict[str, Any] | None) -> None:
        """Rewrite ``folder``'s meta.json atomically (temp file in tmp/, fsync, rename).

        A folder that is gone (a damaged run) is skipped; other failures raise StoreUnavailable,
        so the caller's transaction rolls back and index and meta.json stay alike.
        """
        if meta is None or not folder.is_dir():
            return
        try:
            _replace_file(self._tmp, folder / _META_FILE, json.dumps(meta, indent=1, allow_nan=False).encode())
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _tombstone(self, folder: Path) -> None:
        """Mark a folder deleted (before its index row goes), so a rebuild never brings it back."""
        try:
            if folder.is_dir():
                _replace_file(self._tmp, folder / _META_FILE, b'{"deleted": true}', sync=False)
        except OSError:
            pass  # the folder is removed right after; a leftover without a row is re-indexed, not lost

    def _stat_problem(self, run_id: str, manifest: dict[str, list[Any]]) -> str | None:
        folder = self._runs / run_id
        for name, (size, _sha) in manifest.items():
            try:
                got = (folder / name).stat().st_size
            except FileNotFoundError:
                return f"its file {name} is missing from the store"
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror or exc})"
            if got != size:
                return f"{name} is {got:,} bytes on disk but was {size:,} bytes when saved (truncated or changed)"
        return None

    # ------------------------------------------------------------ saving
    def save(self, run: Run, dataset: Dataset | None, *, owner: str, source: str,
             csv_bytes: bytes | None = None, label: str = "") -> RunRecord:
        """Keep a finished or stopped run: atomically, then prune (see the module docstring).

        Args:
            run: the trained run.
            dataset: the data it trained on (for the test metrics and the points added by clicking);
                None keeps the run without metrics.
            owner: whose run it is.
            source: where it came from (one of ``train, lesson, compare, sweep, cli, import``).
            csv_bytes: the uploaded CSV (``config.data.source == "csv"``), kept once by its sha256 when
                it is at most ``max_csv_bytes``; over the cap the run is kept without it
                (:attr:`RunRecord.note` says so and :meth:`load` gives no dataset).
            label: the user's label.

        Returns:
            The new run's :class:`RunRecord`.

        Raises:
            StoreError: bad arguments (not a Run, unknown source, label too long).
            StoreUnavailable: the store cannot be written (:attr:`why` says why).
        """
        owner, label = _check_owner(owner), _check_label(label)
        if source not in SOURCES:
            raise StoreError(f"source must be one of {', '.join(SOURCES)}, got {str(source)[:40]!r}")
        if not isinstance(run, Run):
            raise StoreError(f"expected a Run, got {type(run).__name__}")
        if csv_bytes is not None and not isinstance(csv_bytes, (bytes, bytearray)):
            raise StoreError(f"csv_bytes must be bytes, got {type(csv_bytes).__name__}")
        self._db_or_raise()
        try:
            files = persistence.run_files(run, dataset)
        except persistence.PersistenceError as exc:
            raise StoreError(str(exc)) from None
        config = run.config
        dataset_name, note = describe(config.data), None
        points = _added_points(config, dataset)
        if points:
            files[_POINTS_FILE] = json.dumps({"points": points}).encode()
            dataset_name += f" + {len(points)} added point{'s' if len(points) != 1 else ''}"
        csv_sha = None
        if config.data.source == "csv":
            if csv_bytes is None:
                note = "the data file was not given to the store, so the run opens without its data"
            elif len(csv_bytes) > self.max_csv_bytes:
                note = (f"the data file ({_mb(len(csv_bytes))}) is over the store's {_mb(self.max_csv_bytes)} "
                        "limit for data and was not kept, so the run opens without its data")
            else:
                csv_sha = hashlib.sha256(csv_bytes).hexdigest()
        scores: dict[str, Any] = {}
        if "metrics.json" in files:
            scores = json.loads(files["metrics.json"]).get("test") or {}
        status = "stopped" if run.stopped else "done"
        values = dict(
            status=status, dataset=dataset_name, strategy=config.strategy.kind, members=len(run.members),
            epochs=int(run.epochs_done), task=run.task, test_nll=_finite(scores.get("nll")),
            test_rmse=_finite(scores.get("rmse")), test_accuracy=_finite(scores.get("accuracy")),
            seconds=_finite(run.seconds), error=None, note=note)
        return self._save_files(files, owner=owner, source=source, label=label, values=values,
                                csv=(csv_sha, csv_bytes) if csv_sha else None)

    def save_failed(self, config: RunConfig, *, owner: str, source: str, error: str,
                    dataset_name: str = "") -> RunRecord:
        """Keep a run that failed: its config and its error message only (status ``"failed"``).

        Raises:
            StoreError: bad arguments.  StoreUnavailable: the store cannot be written.
        """
        owner = _check_owner(owner)
        if source not in SOURCES:
            raise StoreError(f"source must be one of {', '.join(SOURCES)}, got {str(source)[:40]!r}")
        if not isinstance(config, RunConfig):
            raise StoreError(f"expected a RunConfig, got {type(config).__name__}")
        self._db_or_raise()
        error = " ".join(str(error).split())[:_MAX_ERROR] or "the run failed"
        values = dict(
            status="failed", dataset=str(dataset_name)[:_MAX_LABEL] or describe(config.data),
            strategy=config.strategy.kind, members=config.strategy.ensemble_size, epochs=0,
            task=config.data.inferred_task or "", test_nll=None, test_rmse=None, test_accuracy=None,
            seconds=None, error=error, note=None)
        return self._save_files({"config.json": config.to_json().encode()}, owner=owner, source=source,
                                label="", values=values, csv=None)

    def _db_or_raise(self) -> None:
        with self._lock:
            self._db()

    def _save_files(self, files: dict[str, bytes], *, owner: str, source: str, label: str,
                    values: dict[str, Any], csv: tuple[str, bytes] | None) -> RunRecord:
        run_id = secrets.token_urlsafe(16)
        created = time.time()
        files[_STORE_FILE] = json.dumps({"format": "deep-ensemble-lab/stored-run", "version": SCHEMA_VERSION,
                                         "run_id": run_id, "owner": owner, "created": created,
                                         "source": source, "csv_sha256": csv[0] if csv else None,
                                         **values}, indent=1, allow_nan=False).encode()
        manifest = {name: [len(data), hashlib.sha256(data).hexdigest()] for name, data in files.items()}
        size = sum(len(d) for d in files.values())
        files[_META_FILE] = json.dumps(_run_meta_dict(run_id, owner, created, label, False, source,
                                                      csv[0] if csv else None, manifest, []),
                                       indent=1, allow_nan=False).encode()
        size += len(files[_META_FILE])  # the size on disk (meta.json grows a little with result links)
        tmp = self._tmp / run_id
        _crash_point("start")
        try:
            with _FileLock(self.root / "lock", exclusive=False):
                if csv is not None:
                    self._write_csv(*csv)
                _crash_point("csv written")
                tmp.mkdir(parents=True)
                _write_files(tmp, files)
                _crash_point("files written")
                os.replace(tmp, self._runs / run_id)
                _fsync_dir(self._runs)
                _crash_point("renamed")
                row = dict(run_id=run_id, owner=owner, created=created, label=label, starred=0, source=source,
                           bytes=size, damaged=None, shared=0, csv_sha=csv[0] if csv else None,
                           files=json.dumps(manifest), **values)
                try:
                    with self._tx() as conn:
                        if csv is not None:
                            conn.execute("INSERT OR IGNORE INTO csvs(sha, bytes) VALUES (?, ?)",
                                         (csv[0], len(csv[1])))
                        conn.execute(f"INSERT INTO runs({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                     tuple(row.values()))
                except StoreUnavailable:
                    _remove(self._runs / run_id)
                    raise
                _crash_point("indexed")
                try:
                    pruned = self._prune(keep=run_id)
                except StoreUnavailable:
                    pruned = 0  # the run is kept; retention catches up at the next save
                _crash_point("pruned")
        except OSError as exc:
            _remove(tmp)
            raise self._unavailable(exc) from None
        if pruned:
            self._collect_garbage()
        if self._why is not None and not self._fatal:
            self._why = None  # it worked: the store is writable again
        record = self.get(run_id, owner)
        if record is None:  # pragma: no cover - pruned at once (a cap of 0 is refused), or deleted meanwhile
            raise StoreError("the run was saved but is no longer in the store")
        return record

    def _write_csv(self, sha: str, data: bytes) -> None:
        target = self._csv / f"{sha}.csv"
        if target.exists() and target.stat().st_size == len(data):
            return
        tmp = self._tmp / f"{sha}.{secrets.token_hex(4)}.csv"
        _write_synced(tmp, data)
        os.replace(tmp, target)
        _fsync_dir(self._csv)

    # ------------------------------------------------------------ retention
    def _prune(self, keep: str | None) -> int:
        """Delete the oldest unstarred runs beyond the caps (never ``keep``); returns how many.

        ``keep`` None (after a sweep was saved): only the disk cap applies.  Sweeps count toward the
        disk cap but are pruned only by their own count cap.
        """
        keep = keep or ""
        with self._tx() as conn:
            owner = conn.execute("SELECT owner FROM runs WHERE run_id=?", (keep,)).fetchone()
            victims: dict[str, tuple[Any, ...]] = {}
            cols = "run_id, owner, created, label, dataset, strategy, bytes, csv_sha"
            if owner is not None:
                n = conn.execute("SELECT count(*) FROM runs WHERE owner=?", owner).fetchone()[0]
                if n > self.max_runs_per_owner:
                    for r in conn.execute(f"SELECT {cols} FROM runs WHERE owner=? AND starred=0 AND run_id!=? "
                                          "ORDER BY created LIMIT ?", (owner[0], keep, n - self.max_runs_per_owner)):
                        victims[r[0]] = (*r, "count")
            total = (conn.execute("SELECT coalesce(sum(bytes), 0) FROM runs").fetchone()[0]
                     + conn.execute("SELECT coalesce(sum(bytes), 0) FROM csvs").fetchone()[0]
                     + conn.execute("SELECT coalesce(sum(bytes), 0) FROM sweeps").fetchone()[0])
            total -= sum(v[6] for v in victims.values())
            if total > self.max_total_bytes:
                csv_refs = dict(conn.execute("SELECT csv_sha, count(*) FROM runs WHERE csv_sha IS NOT NULL "
                                             "GROUP BY csv_sha").fetchall())
                csv_size = dict(conn.execute("SELECT sha, bytes FROM csvs").fetchall())
                for v in victims.values():
                    if v[7]:
                        csv_refs[v[7]] -= 1
                        total -= csv_size.get(v[7], 0) if csv_refs[v[7]] == 0 else 0
                for r in conn.execute(f"SELECT {cols} FROM runs WHERE starred=0 AND run_id!=? ORDER BY created",
                                      (keep,)).fetchall():
                    if total <= self.max_total_bytes:
                        break
                    if r[0] in victims:
                        continue
                    victims[r[0]] = (*r, "size")
                    total -= r[6]
                    if r[7]:
                        csv_refs[r[7]] -= 1
                        total -= csv_size.get(r[7], 0) if csv_refs[r[7]] == 0 else 0
            if not victims:
                return 0
            now = time.time()
            for run_id, own, created, label, dataset, strategy, _b, _s, why in victims.values():
                name = f"“{label}”" if label else f"the {strategy} run on {dataset}"
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(created))
                reason = (f"you keep at most {self.max_runs_per_owner} runs" if why == "count"
                          else f"the store keeps at most {_mb(self.max_total_bytes)} of runs")
                conn.execute("INSERT INTO notices(owner, created, text) VALUES (?, ?, ?)",
                             (own, now, f"Removed {name} from {when}: {reason}; star a run to keep it."))
                conn.execute("DELETE FROM links WHERE run_id=?", (run_id,))
                conn.execute("DELETE FROM runs WHERE run_id=?", (run_id,))
                self._tombstone(self._runs / run_id)
        for run_id in victims:
            _remove(self._runs / run_id)
        return len(victims)

    def _collect_garbage(self) -> None:
        """Remove CSVs no run refers to, when no save is in progress (else later)."""
        try:
            with _FileLock(self.root / "lock", exclusive=True) as lock:
                if not lock.held:
                    return
                with self._tx() as conn:
                    gone = [r[0] for r in conn.execute(
                        "SELECT sha FROM csvs WHERE sha NOT IN (SELECT csv_sha FROM runs WHERE csv_sha IS NOT NULL)")]
                    conn.execute("DELETE FROM csvs WHERE sha NOT IN "
                                 "(SELECT csv_sha FROM runs WHERE csv_sha IS NOT NULL)")
                for sha in gone:
                    _remove(self._csv / f"{sha}.csv")
        except (OSError, StoreUnavailable):
            pass  # a leftover CSV costs disk only; start-up removes it

    def pruned_notice(self, owner: str) -> list[str]:
        """What retention removed from ``owner``'s runs since the last call (then forgotten)."""
        owner = _check_owner(owner)
        rows = self._read("SELECT id, text FROM notices WHERE owner=? ORDER BY id", (owner,))
        if rows:
            try:
                with self._tx() as conn:
                    conn.execute("DELETE FROM notices WHERE owner=? AND id<=?", (owner, rows[-1][0]))
            except StoreUnavailable:
                pass
        return [r[1] for r in rows]

    # ------------------------------------------------------------ reading
    def list(self, owner: str, *, search: str = "", dataset: str | None = None,
             strategy: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """``owner``'s runs, newest first, from the index only (no file is read).

        Args:
            owner: whose runs.
            search: case-insensitive text looked for in the label, data set, strategy, status, source
                and error.
            dataset, strategy: exact values of :attr:`RunRecord.dataset` / :attr:`RunRecord.strategy`.
            limit: at most this many.
        """
        owner = _check_owner(owner)
        sql, args = [_SELECT + " WHERE owner=?"], [owner]
        if search:
            pattern = "%" + str(search).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql.append("AND (" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in
                                              ("label", "dataset", "strategy", "status", "source", "error")) + ")")
            args += [pattern] * 6
        if dataset is not None:
            sql.append("AND dataset=?")
            args.append(dataset)
        if strategy is not None:
            sql.append("AND strategy=?")
            args.append(strategy)
        sql.append("ORDER BY created DESC, rowid DESC")
        if limit is not None:
            sql.append("LIMIT ?")
            args.append(max(0, int(limit)))
        return [_record(r) for r in self._read(" ".join(sql), tuple(args))]

    def get(self, run_id: str, owner: str) -> RunRecord | None:
        """The record of ``owner``'s run ``run_id``, or None (unknown, or another owner's)."""
        owner = _check_owner(owner)
        if not _valid_id(run_id):
            return None
        rows = self._read(_SELECT + " WHERE run_id=? AND owner=?", (run_id, owner))
        return _record(rows[0]) if rows else None

    def _row(self, run_id: str, owner: str) -> tuple[RunRecord, dict[str, list[Any]], str | None]:
        owner = _check_owner(owner)
        rows = (self._read(f"SELECT {', '.join(_COLUMNS)}, files, csv_sha FROM runs WHERE run_id=? AND owner=?",
                           (run_id, owner)) if _valid_id(run_id) else [])
        if not rows:
            if self._conn is None and self._why:
                raise StoreError(f"the run store cannot be read: {self._why}")
            raise StoreError("no such run among your runs (it may have been deleted or pruned)")
        r = rows[0]
        return _record(r[:len(_COLUMNS)]), json.loads(r[-2]), r[-1]

    def _reader(self, record: RunRecord, manifest: dict[str, list[Any]]) -> Any:
        """A ``read(name)`` that reads a stored file at most its saved size and checks its sha256."""
        folder = self._runs / record.run_id

        def read(name: str) -> bytes:
            size, sha = manifest[name]
            try:
                with open(folder / name, "rb") as f:
                    data = f.read(size + 1)
            except FileNotFoundError:
                raise persistence.PersistenceError(f"{name} is missing") from None
            except OSError as exc:
                raise persistence.PersistenceError(f"{name} cannot be read ({exc.strerror or exc})") from None
            if len(data) != size:
                raise persistence.PersistenceError(f"{name} is {'longer' if len(data) > size else 'shorter'} "
                                                   "than when it was saved (truncated or changed)")
            if hashlib.sha256(data).hexdigest() != sha:
                raise persistence.PersistenceError(f"{name} changed since it was saved (its content differs)")
            return data

        return read

    def _mark_damaged(self, run_id: str, why: str) -> None:
        try:
            with self._tx() as conn:
                conn.execute("UPDATE runs SET damaged=? WHERE run_id=?", (why, run_id))
        except StoreUnavailable:
            pass

    def _load(self, record: RunRecord, manifest: dict[str, list[Any]], csv_sha: str | None
              ) -> tuple[Run, Dataset | None]:
        if record.status == "failed":
            raise StoreError(f"this run failed, so there is no trained model to open: {record.error}")
        read = self._reader(record, manifest)
        sizes = {n: manifest[n][0] for n in persistence.RUN_FILES if n in manifest}
        try:
            run = persistence._run_from_files(persistence._Files(f"stored run {record.run_id}", sizes, read))
        except persistence.PersistenceError as exc:
            why = str(exc)
            self._mark_damaged(record.run_id, why)
            raise StoreError(f"this stored run is damaged and cannot be opened: {why}") from None
        if record.damaged:
            self._mark_damaged(record.run_id, None)  # type: ignore[arg-type]  # readable again
        return run, self._dataset(run.config, manifest, read, csv_sha)

    def _dataset(self, config: RunConfig, manifest: dict[str, list[Any]], read: Any,
                 csv_sha: str | None) -> Dataset | None:
        """The data rebuilt from the spec (+ the stored CSV, + added points); None if it cannot be."""
        try:
            csv_data = None
            if config.data.source == "csv":
                if csv_sha is None:
                    return None
                csv_data = self.load_csv_by_hash(csv_sha)
                if csv_data is None:
                    return None
            dataset = load_dataset(config.data, csv_data)
            if _POINTS_FILE in manifest:
                raw = read(_POINTS_FILE)
                points = json.loads(raw)["points"]
                if not isinstance(points, list) or len(points) > _MAX_POINTS:
                    return None
                for x, y in points:
                    dataset = add_training_point(dataset, float(x), float(y))
            return dataset
        except (DataError, ValueError, TypeError, KeyError, persistence.PersistenceError, OSError):
            return None

    def load_csv_by_hash(self, sha: str) -> bytes | None:
        """The stored CSV with this sha256 (checked), or None when it is not kept."""
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            return None
        try:
            with open(self._csv / f"{sha}.csv", "rb") as f:
                data = f.read(max(self.max_csv_bytes, MAX_CSV_BYTES) + 1)
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha else None

    def load(self, run_id: str, owner: str) -> tuple[Run, Dataset | None]:
        """Open ``owner``'s run: the :class:`Run` and its data rebuilt (None if it cannot be rebuilt).

        Every byte read is checked against the size and sha256 saved in the index, and the files
        are read with :mod:`~ensemble_core.persistence`'s bounded reader.

        Raises:
            StoreError: unknown run (or another owner's), a failed run (no model), or damaged files
                (the run is then marked damaged in the index).
        """
        record, manifest, csv_sha = self._row(run_id, owner)
        return self._load(record, manifest, csv_sha)

    def load_csv(self, run_id: str, owner: str) -> bytes | None:
        """The uploaded CSV ``owner``'s run trained on, or None (not a CSV run, or not kept)."""
        _record_, _manifest, csv_sha = self._row(run_id, owner)
        return None if csv_sha is None else self.load_csv_by_hash(csv_sha)

    def read_config(self, run_id: str, owner: str) -> RunConfig:
        """The config of ``owner``'s run (failed runs too), checked against its saved sha256.

        Raises:
            StoreError: unknown run, or a damaged ``config.json``.
        """
        record, manifest, _csv = self._row(run_id, owner)
        try:
            if manifest["config.json"][0] > persistence.MAX_CONFIG_BYTES:
                raise persistence.PersistenceError("config.json is larger than a config can be")
            return RunConfig.from_json(self._reader(record, manifest)("config.json"))
        except (persistence.PersistenceError, ConfigError, ValueError, TypeError) as exc:
            self._mark_damaged(record.run_id, str(exc))
            raise StoreError(f"this stored run is damaged: {exc}") from None

    def export_zip(self, run_id: str, owner: str) -> bytes:
        """``owner``'s run as the zip :func:`ensemble_core.persistence.export_zip` makes (the stored files).

        Raises:
            StoreError: unknown run, a failed run, or damaged files.
        """
        record, manifest, _csv = self._row(run_id, owner)
        if record.status == "failed":
            raise StoreError(f"this run failed, so there is no trained model to export: {record.error}")
        read = self._reader(record, manifest)
        buf = io.BytesIO()
        try:
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for name in persistence.RUN_FILES:
                    if name in manifest:
                        info = zipfile.ZipInfo(name, date_time=persistence._ZIP_DATE)
                        info.compress_type = zipfile.ZIP_DEFLATED
                        zf.writestr(info, read(name))
        except persistence.PersistenceError as exc:
            self._mark_damaged(record.run_id, str(exc))
            raise StoreError(f"this stored run is damaged and cannot be exported: {exc}") from None
        return buf.getvalue()

    # ------------------------------------------------------------ changing
    def _update(self, run_id: str, owner: str, sql: str, args: tuple[Any, ...]) -> None:
        owner = _check_owner(owner)
        if not _valid_id(run_id):
            raise StoreError("no such run among your runs")
        with self._tx() as conn:
            n = conn.execute(sql + " WHERE run_id=? AND owner=?", (*args, run_id, owner)).rowcount
            if n:
                self._put_meta(self._runs / run_id, self._run_meta(conn, run_id))
        if n == 0:
            raise StoreError("no such run among your runs (it may have been deleted or pruned)")

    def rename(self, run_id: str, owner: str, label: str) -> None:
        """Set the label of ``owner``'s run (printable text, at most 200 characters; ``""`` clears it)."""
        self._update(run_id, owner, "UPDATE runs SET label=?", (_check_label(label),))

    def star(self, run_id: str, owner: str, starred: bool) -> None:
        """Star (never pruned) or unstar ``owner``'s run."""
        self._update(run_id, owner, "UPDATE runs SET starred=?", (1 if starred else 0,))

    def delete(self, run_id: str, owner: str) -> None:
        """Delete ``owner``'s run, its result links and its files (the index row first)."""
        owner = _check_owner(owner)
        if not _valid_id(run_id):
            raise StoreError("no such run among your runs")
        with self._tx() as conn:
            n = conn.execute("DELETE FROM runs WHERE run_id=? AND owner=?", (run_id, owner)).rowcount
            if n:
                conn.execute("DELETE FROM links WHERE run_id=?", (run_id,))
                self._tombstone(self._runs / run_id)
        if n == 0:
            raise StoreError("no such run among your runs (it may have been deleted or pruned)")
        _remove(self._runs / run_id)
        self._collect_garbage()

    # ------------------------------------------------------------ result links
    def share(self, run_id: str, owner: str) -> str:
        """A read-only result link token for ``owner``'s run (the same one while it is not revoked).

        Returns:
            ``secrets.token_urlsafe(24)``: 192 random bits, url-safe.

        Raises:
            StoreError: unknown run, or a failed run (nothing to show).
        """
        record = self.get(run_id, owner)
        if record is None:
            raise StoreError("no such run among your runs (it may have been deleted or pruned)")
        if record.status == "failed":
            raise StoreError("a failed run has no result to share")
        with self._tx() as conn:
            row = conn.execute("SELECT token FROM links WHERE run_id=? AND owner=? AND revoked=0",
                               (run_id, owner)).fetchone()
            if row is not None:
                return str(row[0])
            token = secrets.token_urlsafe(24)
            conn.execute("INSERT INTO links(token, run_id, owner, created) VALUES (?, ?, ?, ?)",
                         (token, run_id, owner, time.time()))
            conn.execute("UPDATE runs SET shared=1 WHERE run_id=?", (run_id,))
            self._put_meta(self._runs / run_id, self._run_meta(conn, run_id))
        return token

    def revoke(self, run_id: str, owner: str) -> None:
        """Revoke every result link of ``owner``'s run (opening one then fails)."""
        if self.get(run_id, owner) is None:
            raise StoreError("no such run among your runs (it may have been deleted or pruned)")
        with self._tx() as conn:
            conn.execute("UPDATE links SET revoked=1 WHERE run_id=? AND owner=?", (run_id, owner))
            conn.execute("UPDATE runs SET shared=0 WHERE run_id=?", (run_id,))
            self._put_meta(self._runs / run_id, self._run_meta(conn, run_id))

    def open_shared(self, token: str) -> tuple[RunRecord, Run, Dataset | None]:
        """The run behind a result link: its record, the run and its data.

        Raises:
            StoreError: the link is malformed, unknown or revoked, or the run is gone or damaged.
        """
        if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token):
            raise StoreError("this result link is not valid")
        rows = self._read("SELECT run_id, owner, revoked FROM links WHERE token=?", (token,))
        if not rows:
            raise StoreError("this result link is unknown: the run may have been deleted")
        run_id, owner, revoked = rows[0]
        if revoked:
            raise StoreError("this result link was revoked by its owner")
        record, manifest, csv_sha = self._row(run_id, owner)
        run, dataset = self._load(record, manifest, csv_sha)
        return record, run, dataset

    # ------------------------------------------------------------ sweeps
    def save_sweep(self, owner: str, summary: dict[str, Any], *, sweep_id: str | None = None,
                   run_ids: Sequence[str | None] = ()) -> str:
        """Save a new sweep (``sweep_id`` None) or update ``owner``'s sweep in place; returns its id.

        Args:
            owner: whose sweep.
            summary: the Sweep page's results (spec, trials with params, metrics, status, curves),
                JSON-able: dicts with text keys, lists, tuples, text, numbers (numpy ones too), bools,
                None.  Non-finite floats are kept as null.  At most :data:`MAX_SWEEP_BYTES` encoded.
                The record's fields come from its keys when present: ``label``, ``task``, ``metric``,
                ``n_trials`` (default: the length of ``trials``), ``n_done`` (default: trials whose
                ``status`` is ``"done"``) and ``status`` (default ``"running"``).
            sweep_id: None for a new sweep (a fresh unguessable id), or the id of ``owner``'s sweep.
            run_ids: the store run id of each trial (None for a trial not saved as a run).

        The summary is written atomically (temp file, fsync, rename), then the index row; result
        links are kept across updates.  A new sweep may prune ``owner``'s oldest sweeps beyond
        :data:`MAX_SWEEPS_PER_OWNER` (with a :meth:`pruned_notice`).

        Raises:
            StoreError: bad arguments, a summary over the size bound, or an unknown sweep id.
            StoreUnavailable: the store cannot be written.
        """
        owner = _check_owner(owner)
        if not isinstance(summary, dict):
            raise StoreError(f"a sweep summary must be a dict, got {type(summary).__name__}")
        clean = _clean_json(summary, 0)
        encoded = json.dumps(clean, separators=(",", ":"), allow_nan=False)
        if len(encoded) > MAX_SWEEP_BYTES:  # characters >= bytes / 4; check the bytes when close
            size = len(encoded.encode())
            if size > MAX_SWEEP_BYTES:
                raise StoreError(f"this sweep's results are {_mb(size)}, over the {_mb(MAX_SWEEP_BYTES)} a saved "
                                 "sweep may have; save fewer trials or shorter curves")
        ids = list(run_ids) if not isinstance(run_ids, (str, bytes)) else None
        if ids is None or len(ids) > _MAX_RUN_IDS or not all(r is None or _valid_id(r) for r in ids):
            raise StoreError("run_ids must be a list of run ids (or None for a trial that was not saved)")
        fields = _sweep_fields(clean)
        if sweep_id is not None and not _valid_id(sweep_id):
            raise StoreError("no such sweep among your sweeps")
        self._db_or_raise()
        now = time.time()
        if sweep_id is None:
            return self._insert_sweep(owner, fields, encoded, ids, now)
        rows = self._read("SELECT created FROM sweeps WHERE sweep_id=? AND owner=?", (sweep_id, owner))
        if not rows:
            raise StoreError("no such sweep among your sweeps (it may have been deleted or pruned)")
        created = rows[0][0]
        data = _sweep_file(sweep_id, owner, created, now, fields, ids, encoded)
        folder = self._sweeps / sweep_id
        tmp = self._tmp / f"sweep-{sweep_id}.{secrets.token_hex(4)}"
        try:
            with _FileLock(self.root / "lock", exclusive=False):
                _write_synced(tmp, data)
                try:
                    with self._tx() as conn:
                        n = conn.execute(
                            "UPDATE sweeps SET updated=?, label=?, task=?, metric=?, n_trials=?, n_done=?, "
                            "status=?, damaged=NULL, bytes=? WHERE sweep_id=? AND owner=?",
                            (now, *fields.values(), len(data), sweep_id, owner)).rowcount
                        if n == 0:
                            raise StoreError("no such sweep among your sweeps (it may have been deleted or pruned)")
                        fresh = not folder.is_dir()
                        folder.mkdir(exist_ok=True)
                        os.replace(tmp, folder / _SUMMARY_FILE)
                        if fresh or not (folder / _META_FILE).exists():
                            self._put_meta(folder, self._sweep_meta(conn, sweep_id))
                finally:
                    tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise self._unavailable(exc) from None
        self._writable_again()
        return sweep_id

    def _insert_sweep(self, owner: str, fields: dict[str, Any], encoded: str, ids: list[str | None],
                      now: float) -> str:
        sweep_id = secrets.token_urlsafe(16)
        data = _sweep_file(sweep_id, owner, now, now, fields, ids, encoded)
        meta = {"format": "deep-ensemble-lab/sweep-meta", "version": SCHEMA_VERSION, "sweep_id": sweep_id,
                "owner": owner, "created": now, "deleted": False, "links": []}
        tmp = self._tmp / f"sweep-{sweep_id}"
        try:
            with _FileLock(self.root / "lock", exclusive=False):
                tmp.mkdir(parents=True)
                _write_files(tmp, {_SUMMARY_FILE: data, _META_FILE: json.dumps(meta, indent=1).encode()})
                os.replace(tmp, self._sweeps / sweep_id)
                _fsync_dir(self._sweeps)
                row = dict(sweep_id=sweep_id, owner=owner, created=now, updated=now, **fields, shared=0,
                           damaged=None, bytes=len(data))
                try:
                    with self._tx() as conn:
                        conn.execute(f"INSERT INTO sweeps({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                     tuple(row.values()))
                except StoreUnavailable:
                    _remove(self._sweeps / sweep_id)
                    raise
                try:
                    self._prune_sweeps(owner, keep=sweep_id)
                    pruned = self._prune(keep=None)
                except StoreUnavailable:
                    pruned = 0
        except OSError as exc:
            _remove(tmp)
            raise self._unavailable(exc) from None
        if pruned:
            self._collect_garbage()
        self._writable_again()
        return sweep_id

    def _writable_again(self) -> None:
        if self._why is not None and not self._fatal:
            self._why = None

    def _prune_sweeps(self, owner: str, keep: str) -> None:
        """Drop ``owner``'s oldest sweeps (by last update) beyond :data:`MAX_SWEEPS_PER_OWNER`, with notices."""
        with self._tx() as conn:
            n = conn.execute("SELECT count(*) FROM sweeps WHERE owner=?", (owner,)).fetchone()[0]
            if n <= MAX_SWEEPS_PER_OWNER:
                return
            victims = conn.execute("SELECT sweep_id, label, updated FROM sweeps WHERE owner=? AND sweep_id!=? "
                                   "ORDER BY updated, rowid LIMIT ?", (owner, keep, n - MAX_SWEEPS_PER_OWNER)
                                   ).fetchall()
            for sweep_id, label, updated in victims:
                name = f"the sweep “{label}”" if label else "a sweep"
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(updated))
                conn.execute("INSERT INTO notices(owner, created, text) VALUES (?, ?, ?)",
                             (owner, time.time(), f"Removed {name} from {when}: you keep at most "
                                                  f"{MAX_SWEEPS_PER_OWNER} sweeps."))
                conn.execute("DELETE FROM sweep_links WHERE sweep_id=?", (sweep_id,))
                conn.execute("DELETE FROM sweeps WHERE sweep_id=?", (sweep_id,))
                self._tombstone(self._sweeps / sweep_id)
        for sweep_id, _label, _updated in victims:
            _remove(self._sweeps / sweep_id)

    def list_sweeps(self, owner: str, *, limit: int | None = None) -> list[SweepRecord]:
        """``owner``'s saved sweeps, the most recently updated first (from the index only)."""
        owner = _check_owner(owner)
        sql, args = _SWEEP_SELECT + " WHERE owner=? ORDER BY updated DESC, rowid DESC", [owner]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        return [_sweep_record(r) for r in self._read(sql, tuple(args))]

    def _sweep_row(self, sweep_id: str, owner: str) -> SweepRecord:
        owner = _check_owner(owner)
        rows = (self._read(_SWEEP_SELECT + " WHERE sweep_id=? AND owner=?", (sweep_id, owner))
                if _valid_id(sweep_id) else [])
        if not rows:
            if self._conn is None and self._why:
                raise StoreError(f"the run store cannot be read: {self._why}")
            raise StoreError("no such sweep among your sweeps (it may have been deleted or pruned)")
        return _sweep_record(rows[0])

    def _open_sweep(self, record: SweepRecord) -> tuple[SweepRecord, dict[str, Any], list[str | None]]:
        body, why = _read_sweep_file(self._sweeps / record.sweep_id / _SUMMARY_FILE)
        if body is None or body.get("sweep_id") != record.sweep_id or body.get("owner") != record.owner:
            why = why or "its summary belongs to another sweep"
            try:
                with self._tx() as conn:
                    conn.execute("UPDATE sweeps SET damaged=? WHERE sweep_id=?", (why, record.sweep_id))
            except StoreUnavailable:
                pass
            raise StoreError(f"this saved sweep is damaged and cannot be opened: {why}")
        fields = _sweep_fields(body)
        got = SweepRecord(record.sweep_id, record.owner, record.created,
                          _finite(body.get("updated")) or record.updated, **fields, shared=record.shared)
        if got != record:  # damaged before, or an update whose index row a crash lost: the file is the truth
            try:
                with self._tx() as conn:
                    conn.execute("UPDATE sweeps SET updated=?, label=?, task=?, metric=?, n_trials=?, n_done=?, "
                                 "status=?, damaged=NULL WHERE sweep_id=?",
                                 (got.updated, *fields.values(), record.sweep_id))
            except StoreUnavailable:
                pass
        ids = body.get("run_ids")
        ids = [r if _valid_id(r) else None for r in ids] if isinstance(ids, list) else []
        return got, body["summary"], ids

    def load_sweep(self, sweep_id: str, owner: str) -> tuple[SweepRecord, dict[str, Any], list[str | None]]:
        """``owner``'s sweep: its record, its summary and the run id of each trial.

        Raises:
            StoreError: unknown sweep (or another owner's), or a damaged summary (the sweep is then
                marked damaged).
        """
        return self._open_sweep(self._sweep_row(sweep_id, owner))

    def delete_sweep(self, sweep_id: str, owner: str) -> None:
        """Delete ``owner``'s sweep, its result links and its folder (the runs of its trials stay)."""
        owner = _check_owner(owner)
        if not _valid_id(sweep_id):
            raise StoreError("no such sweep among your sweeps")
        with self._tx() as conn:
            n = conn.execute("DELETE FROM sweeps WHERE sweep_id=? AND owner=?", (sweep_id, owner)).rowcount
            if n:
                conn.execute("DELETE FROM sweep_links WHERE sweep_id=?", (sweep_id,))
                self._tombstone(self._sweeps / sweep_id)
        if n == 0:
            raise StoreError("no such sweep among your sweeps (it may have been deleted or pruned)")
        _remove(self._sweeps / sweep_id)

    def share_sweep(self, sweep_id: str, owner: str) -> str:
        """A read-only result link token for ``owner``'s sweep (the same one while it is not revoked).

        Returns:
            ``secrets.token_urlsafe(24)``: 192 random bits, url-safe.

        Raises:
            StoreError: unknown sweep.  StoreUnavailable: the store cannot be written.
        """
        self._sweep_row(sweep_id, owner)
        with self._tx() as conn:
            row = conn.execute("SELECT token FROM sweep_links WHERE sweep_id=? AND owner=? AND revoked=0",
                               (sweep_id, owner)).fetchone()
            if row is not None:
                return str(row[0])
            token = secrets.token_urlsafe(24)
            conn.execute("INSERT INTO sweep_links(token, sweep_id, owner, created) VALUES (?, ?, ?, ?)",
                         (token, sweep_id, owner, time.time()))
            conn.execute("UPDATE sweeps SET shared=1 WHERE sweep_id=?", (sweep_id,))
            self._put_meta(self._sweeps / sweep_id, self._sweep_meta(conn, sweep_id))
        return token

    def revoke_sweep(self, sweep_id: str, owner: str) -> None:
        """Revoke every result link of ``owner``'s sweep (opening one then fails)."""
        self._sweep_row(sweep_id, owner)
        with self._tx() as conn:
            conn.execute("UPDATE sweep_links SET revoked=1 WHERE sweep_id=? AND owner=?", (sweep_id, owner))
            conn.execute("UPDATE sweeps SET shared=0 WHERE sweep_id=?", (sweep_id,))
            self._put_meta(self._sweeps / sweep_id, self._sweep_meta(conn, sweep_id))

    def open_shared_sweep(self, token: str) -> tuple[SweepRecord, dict[str, Any]]:
        """The sweep behind a result link: its record and its summary.

        Raises:
            StoreError: "this link was revoked or never existed" (malformed, unknown or revoked, or
                the sweep was deleted), or the sweep is damaged.
        """
        gone = "this link was revoked or never existed"
        if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token):
            raise StoreError(gone)
        rows = self._read("SELECT sweep_id, owner, revoked FROM sweep_links WHERE token=?", (token,))
        if not rows or rows[0][2]:
            raise StoreError(gone)
        sweep_id, owner, _revoked = rows[0]
        try:
            record = self._sweep_row(sweep_id, owner)
        except StoreError:
            raise StoreError(gone) from None
        got, summary, _ids = self._open_sweep(record)
        return got, summary


# ------------------------------------------------------------------ helpers
def _record(row: tuple[Any, ...]) -> RunRecord:
    r = list(row)
    r[4], r[19] = bool(r[4]), bool(r[19])
    return RunRecord(*r)


def _remove(path: Path) -> None:
    """Remove a file or folder tree; a folder is first renamed aside so a half-removed one is never seen."""
    try:
        if path.is_dir() and not path.is_symlink():
            if path.parent.name != "tmp":
                aside = path.parent.parent / "tmp" / f"del-{path.name}-{secrets.token_hex(4)}"
                try:
                    os.replace(path, aside)
                    path = aside
                except OSError:
                    pass
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _added_points(config: RunConfig, dataset: Dataset | None) -> list[list[float]]:
    """Points added by clicking (training rows beyond a synthetic spec's ``n``), as ``[[x, y], ...]``."""
    if dataset is None or config.data.source != "synthetic" or dataset.task != "regression":
        return []
    n = config.data.n
    if dataset.x_train.ndim != 2 or dataset.x_train.shape[1] != 1 or dataset.n_train <= n:
        return []
    x, y = dataset.x_train[n:, 0], dataset.y_train[n:]
    return [[float(a), float(b)] for a, b in zip(x[:_MAX_POINTS], y[:_MAX_POINTS])]


def _is_corrupt(exc: BaseException) -> bool:
    """True for SQLite's "this file is not a (sound) database" errors (not for locks or I/O)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)):
        return False
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _index_usable(db: Path) -> bool:
    """Whether ``db`` opens as an SQLite file that passes ``PRAGMA quick_check``."""
    try:
        conn = sqlite3.connect(db, timeout=1.0)
    except sqlite3.Error:
        return False
    try:
        conn.execute("PRAGMA user_version").fetchone()
        return str(conn.execute("PRAGMA quick_check").fetchone()[0]).lower() == "ok"
    except sqlite3.Error as exc:
        return not _is_corrupt(exc)
    finally:
        conn.close()


def _replace_file(tmp_dir: Path, target: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``target`` atomically: a temp file in ``tmp_dir`` (same file system), then rename."""
    tmp = tmp_dir / f"{target.parent.name}.{target.name}.{secrets.token_hex(4)}"
    try:
        if sync:
            _write_synced(tmp, data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _run_meta_dict(run_id: str, owner: str, created: float, label: str, starred: bool, source: str,
                   csv_sha: str | None, manifest: dict[str, list[Any]], links: list[dict[str, Any]]
                   ) -> dict[str, Any]:
    return {"format": "deep-ensemble-lab/run-meta", "version": SCHEMA_VERSION, "run_id": run_id, "owner": owner,
            "created": created, "label": label, "starred": starred, "source": source, "csv_sha": csv_sha,
            "deleted": False, "files": manifest, "links": links}


def _read_json(path: Path, limit: int) -> Any:
    """A small JSON file, or None when it is missing, too large or not JSON."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            return None
        return json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _clip(v: Any, n: int) -> str:
    return "".join(ch for ch in v if ch.isprintable())[:n] if isinstance(v, str) else ""


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53 else 0


def _manifest(v: Any) -> dict[str, list[Any]] | None:
    """A meta.json's file list if it is well formed: {name: [size, sha256]} with plain file names."""
    if not isinstance(v, dict) or not v:
        return None
    out = {}
    for name, entry in v.items():
        if (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name.startswith(".")
                or not isinstance(entry, list) or len(entry) != 2 or _int(entry[0]) != entry[0]
                or not isinstance(entry[1], str) or not re.fullmatch(r"[0-9a-f]{64}", entry[1])):
            return None
        out[name] = [entry[0], entry[1]]
    return out


def _links(v: Any) -> list[dict[str, Any]]:
    """A meta.json's result links, the well-formed ones only."""
    out = []
    for link in v if isinstance(v, list) else []:
        if (isinstance(link, dict) and isinstance(link.get("token"), str)
                and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", link["token"])):
            out.append({"token": link["token"], "created": _finite(link.get("created")) or 0.0,
                        "revoked": 1 if link.get("revoked") else 0})
    return out


def _sweep_record(row: tuple[Any, ...]) -> SweepRecord:
    r = list(row)
    r[10] = bool(r[10])
    return SweepRecord(*r)


def _clean_json(v: Any, depth: int) -> Any:
    """A JSON-able copy of ``v``: non-finite floats -> None, tuples -> lists, numpy scalars/arrays -> Python."""
    if depth > 64:
        raise StoreError("a sweep summary is nested too deeply (more than 64 levels)")
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                if isinstance(k, (int, float)) and not isinstance(k, bool):
                    k = str(k)
                else:
                    raise StoreError(f"a sweep summary's keys must be text, got {type(k).__name__}")
            out[k] = _clean_json(x, depth + 1)
        return out
    if isinstance(v, (list, tuple)):
        return [_clean_json(x, depth + 1) for x in v]
    if hasattr(v, "tolist") and callable(v.tolist):  # numpy scalars and arrays
        return _clean_json(v.tolist(), depth + 1)
    raise StoreError(f"a sweep summary can hold only JSON values, not {type(v).__name__}")


def _sweep_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The record fields a summary carries (label, task, metric, n_trials, n_done, status)."""
    trials = summary.get("trials")
    trials = trials if isinstance(trials, list) else []
    n_done = summary.get("n_done")
    if _int(n_done) != n_done:
        n_done = sum(1 for t in trials if isinstance(t, dict) and t.get("status") == "done")
    n_trials = summary.get("n_trials")
    if _int(n_trials) != n_trials:
        n_trials = len(trials)
    status = summary.get("status", "running")
    if status not in SWEEP_STATUSES:
        raise StoreError(f"a sweep's status must be one of {', '.join(SWEEP_STATUSES)}, got {str(status)[:40]!r}")
    label = summary.get("label", "")
    return dict(label=_check_label(label if isinstance(label, str) else str(label)),
                task=_clip(summary.get("task"), 40), metric=_clip(summary.get("metric"), 40),
                n_trials=n_trials, n_done=n_done, status=status)


_SWEEP_HEAD = b'{"sha256":"'
_SWEEP_MID = b'","body":'


def _sweep_file(sweep_id: str, owner: str, created: float, updated: float, fields: dict[str, Any],
                run_ids: list[str | None], encoded_summary: str) -> bytes:
    """summary.json: ``{"sha256": <of body>, "body": {...}}`` - it checks itself, so no index is needed."""
    head = json.dumps({"format": "deep-ensemble-lab/sweep", "version": SCHEMA_VERSION, "sweep_id": sweep_id,
                       "owner": owner, "created": created, "updated": updated, **fields, "run_ids": run_ids},
                      separators=(",", ":"), allow_nan=False)
    body = (head[:-1] + ',"summary":' + encoded_summary + "}").encode()
    return _SWEEP_HEAD + hashlib.sha256(body).hexdigest().encode() + _SWEEP_MID + body + b"}"


def _read_sweep_file(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(body, None) for a sound summary.json, else (None, why it cannot be opened)."""
    limit = MAX_SWEEP_BYTES + _MAX_RUN_IDS * 70 + 100_000
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        return None, "its summary file is missing from the store"
    except OSError as exc:
        return None, f"its summary cannot be read ({exc.strerror or exc})"
    start = len(_SWEEP_HEAD) + 64 + len(_SWEEP_MID)
    if len(data) > limit or not data.startswith(_SWEEP_HEAD) or data[start - len(_SWEEP_MID):start] != _SWEEP_MID \
            or not data.endswith(b"}"):
        return None, "its summary is not a saved sweep (truncated or changed)"
    body = data[start:-1]
    if hashlib.sha256(body).hexdigest().encode() != data[len(_SWEEP_HEAD):len(_SWEEP_HEAD) + 64]:
        return None, "its summary changed since it was saved (truncated or changed)"
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None, "its summary is not valid JSON"
    if not isinstance(parsed, dict) or not isinstance(parsed.get("summary"), dict):
        return None, "its summary is not a saved sweep"
    return parsed, None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
