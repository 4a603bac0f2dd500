"""The run store: every run kept on disk, indexed by SQLite, safe to crash at any moment.

Layout of the data directory (``$LAB_DATA_DIR``, default ``./.lab-data``)::

    index.sqlite          the index (stdlib sqlite3, WAL mode): one row per run, result links, notices
    runs/<run_id>/        a run's files: persistence.run_files (config.json, run.json, history.csv,
                          metrics.json, weights.safetensors - JSON, CSV and safetensors, never a pickle),
                          store.json (what the index row says, for a human), added_points.json (points
                          added by clicking on the Data page, when any)
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
from collections.abc import Iterator
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
]

DATA_DIR_ENV = "LAB_DATA_DIR"
DEFAULT_DATA_DIR = "./.lab-data"
#: Environment variables read by :meth:`RunStore.default` for the retention caps.
MAX_RUNS_ENV = "LAB_MAX_RUNS_PER_OWNER"
MAX_MB_ENV = "LAB_MAX_STORE_MB"
#: The index's schema (``PRAGMA user_version``); a newer one makes the store unavailable.
SCHEMA_VERSION = 1
#: The steps of a save at which ``LAB_STORE_CRASH_AT`` can kill the process ("wrote <file>" too).
CRASH_STEPS = ("start", "csv written", "files written", "renamed", "indexed", "pruned")
_CRASH_AT = os.environ.get("LAB_STORE_CRASH_AT", "")
SOURCES = ("train", "lesson", "compare", "sweep", "cli", "import")
_STORE_FILE = "store.json"
_POINTS_FILE = "added_points.json"
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
    """An flock(2) on the store's ``lock`` file: shared for saves, exclusive (non-blocking) for clean-up."""

    def __init__(self, path: Path, exclusive: bool) -> None:
        self.path, self.exclusive, self.fd, self.held = path, exclusive, -1, False

    def __enter__(self) -> _FileLock:
        if fcntl is None:  # pragma: no cover
            self.held = True
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if self.exclusive:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
        self._runs, self._csv, self._tmp = self.root / "runs", self.root / "csv", self.root / "tmp"
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
                for d in (self.root, self._runs, self._csv, self._tmp):
                    d.mkdir(parents=True, exist_ok=True)
                db = self.root / "index.sqlite"
                existed = db.exists()
                conn = sqlite3.connect(db, timeout=self._busy_timeout_s, isolation_level=None,
                                       check_same_thread=False)
            except (OSError, sqlite3.Error) as exc:
                self._why = _describe_os_error(exc, self.root)
                return
            try:
                problem = self._prepare(conn)
            except (OSError, sqlite3.Error) as exc:
                conn.close()
                self._why = _describe_os_error(exc, self.root)
                self._fatal = isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc)
                return
            if problem:
                conn.close()
                self._why, self._fatal = problem, True
                return
            self._conn, self._why = conn, None
        try:
            self._clean_up(index_existed=existed)
            self._scan()
        except (OSError, sqlite3.Error) as exc:
            self._why = _describe_os_error(exc, self.root)

    def _prepare(self, conn: sqlite3.Connection) -> str | None:
        """WAL mode and the schema; returns why the index cannot be used, or None."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            return (f"the run index {self.root / 'index.sqlite'} was written by a newer version of the lab "
                    f"(schema {version}; this one reads schema {SCHEMA_VERSION}); use a newer lab or another "
                    f"{DATA_DIR_ENV}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            return f"the run index {self.root / 'index.sqlite'} cannot use write-ahead logging (mode {mode})"
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process never loses a commit
        conn.execute("PRAGMA foreign_keys=OFF")
        if version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if tables:  # a transaction sets the tables and the version together: this file is not ours
                return (f"{self.root / 'index.sqlite'} is an SQLite file but not a run index of this lab "
                        f"(no schema version); move it away or choose another {DATA_DIR_ENV}")
            # idempotent, so two processes creating the index at once both succeed
            conn.executescript("BEGIN IMMEDIATE;\n" + _SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
        return None

    def _db(self) -> sqlite3.Connection:
        """The open connection (reopening after an earlier failure, unless the index is unreadable)."""
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
        """Remove leftovers of interrupted saves and deletes, when no other process is saving."""
        with _FileLock(self.root / "lock", exclusive=True) as lock:
            if not lock.held:
                return
            for p in self._tmp.iterdir():
                _remove(p)
            known = {r[0] for r in self._read("SELECT run_id FROM runs")}
            if index_existed:  # a new index next to old folders: keep them (someone removed the index)
                for p in self._runs.iterdir():
                    if p.name not in known:
                        _remove(p)
            with self._tx() as conn:
                conn.execute("DELETE FROM links WHERE run_id NOT IN (SELECT run_id FROM runs)")
                conn.execute("DELETE FROM csvs WHERE sha NOT IN (SELECT csv_sha FROM runs WHERE csv_sha IS NOT NULL)")
            kept = {r[0] for r in self._read("SELECT sha FROM csvs")}
            for p in self._csv.iterdir():
                if p.suffix != ".csv" or p.stem not in kept:
                    _remove(p)

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
    def _prune(self, keep: str) -> int:
        """Delete the oldest unstarred runs beyond the caps (never ``keep``); returns how many."""
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
                     + conn.execute("SELECT coalesce(sum(bytes), 0) FROM csvs").fetchone()[0])
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
        return token

    def revoke(self, run_id: str, owner: str) -> None:
        """Revoke every result link of ``owner``'s run (opening one then fails)."""
        if self.get(run_id, owner) is None:
            raise StoreError("no such run among your runs (it may have been deleted or pruned)")
        with self._tx() as conn:
            conn.execute("UPDATE links SET revoked=1 WHERE run_id=? AND owner=?", (run_id, owner))
            conn.execute("UPDATE runs SET shared=0 WHERE run_id=?", (run_id,))

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
