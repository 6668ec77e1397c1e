"""An on-disk cache of embedding vectors, so the same text is never paid for twice.

Remote embedding APIs charge per token and limit requests per minute; a notebook that is
re-run embeds the same sentences again and again. The cache stores one float32 vector per
key, where the key is the SHA-256 of (provider, model, variant, text): the same text under
another model, or another Cohere `input_type`, is another key.

Storage is one SQLite file (`embeddings.sqlite3`) with the vectors as raw little-endian
float32 blobs. SQLite locks the file itself, so several processes (parallel test workers,
two notebooks) can share a cache safely; write-ahead logging lets readers go on while one
process writes.

The default folder is `$COURSE_LIB_CACHE` if that variable is set, else
`~/.cache/course_lib/embeddings`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

CACHE_ENV_VAR = "COURSE_LIB_CACHE"
DB_NAME = "embeddings.sqlite3"
_SQL_CHUNK = 500  # keys per `IN (...)` query, below SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    key    TEXT PRIMARY KEY,  -- sha256 hex of (provider, model, variant, text)
    dim    INTEGER NOT NULL,  -- vector length
    vector BLOB NOT NULL      -- dim little-endian float32 values
)
"""


def default_cache_dir() -> Path:
    """`$COURSE_LIB_CACHE` when set, else `~/.cache/course_lib/embeddings`."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "course_lib" / "embeddings"


def cache_key(provider: str, model: str, text: str, variant: str | None = None) -> str:
    """SHA-256 hex digest of (provider, model, variant, text).

    The four parts are JSON-encoded as a list before hashing, so no choice of separator can
    make two different tuples collide ("a|b", "c" vs "a", "b|c").
    """
    payload = json.dumps([provider, model, variant, text], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Float32 vectors by key, in one SQLite file under `directory`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()
        self.path = self.directory / DB_NAME
        self._initialised = False

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r})"

    def _connect(self) -> sqlite3.Connection:
        """A fresh connection; one per call keeps the cache safe across threads and forks."""
        if not self._initialised:
            self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0)
        if not self._initialised:
            _enable_wal(conn)
            conn.execute(_SCHEMA)
            conn.commit()
            self._initialised = True
        return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among `keys`, as `{key: (dim,) float32}`; absent keys are left out."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with closing(self._connect()) as conn:
            for start in range(0, len(unique), _SQL_CHUNK):
                chunk = unique[start : start + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", chunk
                )
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype="<f4")
                    if vector.shape != (dim,):  # a torn or foreign row: treat as a miss
                        continue
                    found[key] = vector.astype(np.float32)
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store `(key, (dim,) vector)` pairs as float32, replacing any previous value."""
        rows = []
        for key, vector in items:
            v = np.asarray(vector, dtype="<f4").reshape(-1)  # (dim,)
            rows.append((key, int(v.shape[0]), v.tobytes()))
        if not rows:
            return
        with closing(self._connect()) as conn, conn:  # `with conn` commits or rolls back
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (key, dim, vector) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def clear(self) -> None:
        """Delete every cached vector."""
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM embeddings")


def _enable_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to write-ahead logging (readers do not block the one writer).

    Changing the journal mode needs the database to itself and SQLite's busy timeout does not
    cover it, so two processes opening a new cache at once retry here instead of failing.
    """
    for _ in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            time.sleep(0.05)
    conn.execute("PRAGMA journal_mode=WAL")
