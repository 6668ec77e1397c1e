"""Published figures the scaling chapter recomputes, each with its source.

- `published_runs()`: parameters, tokens and FLOPs of training runs
  (course_lib/data/training_compute.json); `training_flops` recomputes the FLOPs as 6·N·D.
- `chinchilla_figures()`: Hoffmann et al. (2022) Tables 2 and 3 and the Gopher budget
  (course_lib/data/chinchilla.json).
- `BESIROGLU_FIT`: the refit of Approach 3 by Besiroglu et al. (2024).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from course_lib.scaling.laws import ChinchillaFit

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class PublishedRun:
    """N parameters trained on D tokens; `flops` is None when the authors print no total."""

    name: str
    params: float
    tokens: float
    flops: float | None
    source: str

    @property
    def tokens_per_param(self) -> float:
        """D / N: about 20 for a Chinchilla-optimal run (Hoffmann et al. 2022)."""
        return self.tokens / self.params


def published_runs() -> dict[str, PublishedRun]:
    """The runs of training_compute.json by name, in file order."""
    raw = json.loads((DATA_DIR / "training_compute.json").read_text())
    return {
        name: PublishedRun(name, float(e["params"]), float(e["tokens"]), e["flops"], e["source"])
        for name, e in raw.items()
        if not name.startswith("_")
    }


def chinchilla_figures() -> dict:
    """Hoffmann et al. (2022): "table3" rows (params, flops, tokens), "table2_exponents",
    "gopher_budget"; and the "besiroglu_fit" constants, each with its "source"."""
    return json.loads((DATA_DIR / "chinchilla.json").read_text())


def _besiroglu_fit() -> ChinchillaFit:
    raw = chinchilla_figures()["besiroglu_fit"]
    return ChinchillaFit(
        E=raw["E"],
        A=raw["A"],
        B=raw["B"],
        alpha=raw["alpha"],
        beta=raw["beta"],
        source=raw["source"],
    )


BESIROGLU_FIT = _besiroglu_fit()
