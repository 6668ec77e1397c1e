"""Published benchmark tables, as data with their source (course_lib/data/benchmarks_*.json).

Each table is transcribed from a paper or model card and never edited by hand elsewhere:
the book shows `load_benchmark_table(name).to_frame()` and the tests check the claims the
authors make about their own tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BENCHMARK_TABLES = ("mistral_7b", "mixtral", "llama31", "llama31_instruct", "phi3")


@dataclass(frozen=True)
class BenchmarkTable:
    """Scores by model (rows) and benchmark (columns); None where the source has no score."""

    name: str
    title: str
    source: str
    columns: tuple[str, ...]
    rows: dict[str, tuple[float | None, ...]]
    settings: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def score(self, model: str, benchmark: str) -> float | None:
        """One published score."""
        return self.rows[model][self.columns.index(benchmark)]

    def to_frame(self) -> pd.DataFrame:
        """A pandas DataFrame (models × benchmarks); missing scores are NaN."""
        import pandas as pd

        frame = pd.DataFrame.from_dict(
            {m: [float("nan") if v is None else v for v in r] for m, r in self.rows.items()},
            orient="index",
            columns=list(self.columns),
        )
        frame.index.name = "model"
        return frame


def load_benchmark_table(name: str) -> BenchmarkTable:
    """The table `course_lib/data/benchmarks_<name>.json`; `name` is one of BENCHMARK_TABLES."""
    if name not in BENCHMARK_TABLES:
        raise KeyError(f"unknown table {name!r}; choose one of {BENCHMARK_TABLES}")
    raw = json.loads((DATA_DIR / f"benchmarks_{name}.json").read_text())
    columns = tuple(raw["columns"])
    for model, row in raw["rows"].items():
        if len(row) != len(columns):
            raise ValueError(f"{name}: row {model!r} has {len(row)} values, {len(columns)} columns")
    return BenchmarkTable(
        name=name,
        title=raw["title"],
        source=raw["source"],
        columns=columns,
        rows={model: tuple(row) for model, row in raw["rows"].items()},
        settings=raw.get("settings", {}),
        note=raw["_about"],
    )


def benchmark_sizes() -> dict[str, int]:
    """Number of test items of each benchmark in course_lib/data/benchmark_sizes.json."""
    raw = json.loads((DATA_DIR / "benchmark_sizes.json").read_text())
    return {name: entry["n_items"] for name, entry in raw.items() if not name.startswith("_")}
