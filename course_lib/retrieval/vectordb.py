"""An embedded vector database: chunks, their metadata and vectors in one SQLite file.

An index (`index.py`) answers "which stored vectors are nearest?"; a vector database keeps
the chunk's text and metadata beside its vector, in a file that survives the process, lets
rows be inserted and deleted while it serves queries, and filters by metadata inside the
search. `SqliteVecStore` does this with sqlite-vec (Alex Garcia, 2024), a SQLite extension
whose `vec0` virtual table stores float32 vectors and answers k-nearest-neighbour queries
by scanning them all (exact search, like `ExactIndex`), with `WHERE` clauses on metadata
columns applied during the scan. SQLite gives the rest: one file, transactions, and
readers that see a write once it is committed.

Python's own `sqlite3` module here is built without `enable_load_extension`, so the
extension is loaded through `apsw` (Another Python SQLite Wrapper), which ships its own
SQLite and allows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from course_lib.embeddings.similarity import normalize
from course_lib.retrieval.chunking import Chunk


def connect(path: str | Path):
    """An `apsw.Connection` to the database file `path` with sqlite-vec loaded."""
    import apsw
    import sqlite_vec

    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.enable_load_extension(False)
    return conn


class SqliteVecStore:
    """Chunks with unit vectors `(d,)` in a `vec0` table of the SQLite file `path`.

    Columns: `id` (the row id), `doc` (a metadata column, filterable in a search),
    `embedding float[d]` with cosine distance, and the chunk's `text`, `start`, `end`
    (auxiliary columns, stored and returned, not filterable). Opening an existing file
    reuses its table; `dim` must match it.
    """

    def __init__(self, path: str | Path, dim: int, table: str = "chunks") -> None:
        if not table.isidentifier():
            raise ValueError(f"table must be a plain identifier, got {table!r}")
        self.path, self.dim, self.table = Path(path), dim, table
        self.conn = connect(self.path)
        self.conn.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0("
            f"id INTEGER PRIMARY KEY, doc TEXT, embedding float[{dim}] distance_metric=cosine, "
            "+text TEXT, +start_char INTEGER, +end_char INTEGER)"
        )
        stored = self._stored_dim()
        if stored != dim:
            raise ValueError(f"{self.path} stores vectors of width {stored}, not {dim}")

    def _stored_dim(self) -> int:
        (sql,) = self.conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = ?", (self.table,)
        ).fetchone()
        return int(sql.split("float[")[1].split("]")[0])

    def __len__(self) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray, ids: Iterable[int]) -> None:
        """Insert `chunks` with their `(n, d)` vectors under `ids`, in one transaction."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if vectors.shape != (len(chunks), self.dim):
            raise ValueError(
                f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}"
            )
        rows = [
            (int(i), c.doc, v.astype(np.float32).tobytes(), c.text, c.start, c.end)
            for i, c, v in zip(ids, chunks, normalize(vectors), strict=True)
        ]
        with self.conn:  # one transaction: all rows or none
            self.conn.executemany(
                f"INSERT INTO {self.table}(id, doc, embedding, text, start_char, end_char) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def delete(self, ids: Iterable[int]) -> None:
        """Delete the rows `ids` (missing ids are ignored), in one transaction."""
        with self.conn:
            self.conn.executemany(
                f"DELETE FROM {self.table} WHERE id = ?", [(int(i),) for i in ids]
            )

    def get(self, i: int) -> Chunk:
        """The chunk stored under id `i`."""
        row = self.conn.execute(
            f"SELECT doc, start_char, end_char, text FROM {self.table} WHERE id = ?", (int(i),)
        ).fetchone()
        if row is None:
            raise KeyError(i)
        return Chunk(*row)

    def search(
        self, query: np.ndarray, k: int, docs: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest rows to `query (d,)`: `scores (k',)` cosines and `ids (k',)`, best
        first; `k' = min(k, rows)`. `docs` keeps only rows whose `doc` is one of them."""
        q = normalize(np.asarray(query, dtype=np.float64).reshape(1, self.dim))[0]
        where, args = "", [q.astype(np.float32).tobytes(), int(k)]
        if docs is not None:
            where = f" AND doc IN ({', '.join('?' * len(docs))})"
            args += list(docs)
        rows = self.conn.execute(
            f"SELECT id, distance FROM {self.table} WHERE embedding MATCH ? AND k = ?{where} "
            "ORDER BY distance",
            args,
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return 1.0 - np.array([r[1] for r in rows], dtype=np.float64), ids  # cosine = 1 - distance

    def close(self) -> None:
        self.conn.close()
