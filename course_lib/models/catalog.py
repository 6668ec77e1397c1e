"""The lecture's models over time, from `course_lib/data/models_timeline.json`.

Every figure is the authors' own with its source; unknown figures are None. `timeline()`
returns the entries in file order, `timeline_table()` a pandas DataFrame for the book, and
`published_size()` the published totals the tests recompute from the presets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "models_timeline.json"


@dataclass(frozen=True)
class TimelineEntry:
    """One model of the lectures: published size, training tokens, energy and the lesson."""

    name: str
    organisation: str
    date: str  # "YYYY-MM", first arXiv version or release post
    params: float | None
    active_params: float | None
    tokens: float | None
    energy_mwh: float | None
    co2e_t: float | None
    preset: str | None
    chapter: int
    learned: str
    source: str

    @property
    def tokens_per_param(self) -> float | None:
        """D / N (Hoffmann et al. 2022 find about 20 compute-optimal)."""
        if self.tokens is None or self.params is None:
            return None
        return self.tokens / (self.active_params or self.params)


def _raw() -> dict:
    return json.loads(DATA_PATH.read_text())


def timeline(chapter: int | None = None) -> list[TimelineEntry]:
    """The catalog's models in file order, optionally only those of one chapter (4 or 5)."""
    entries = [TimelineEntry(**e) for e in _raw()["models"]]
    return [e for e in entries if chapter is None or e.chapter == chapter]


def get_entry(name: str) -> TimelineEntry:
    """The entry called `name` (e.g. "GLaM"); KeyError lists the names."""
    entries = {e.name: e for e in timeline()}
    if name not in entries:
        raise KeyError(f"{name!r} is not in the timeline; known: {sorted(entries)}")
    return entries[name]


def gopher_family_sizes() -> dict[str, float]:
    """Published sizes of the six Gopher models by preset name (Rae et al. 2021, Table 1)."""
    return {k: float(v) for k, v in _raw()["gopher_family"].items() if not k.startswith("_")}


def timeline_table(chapter: int | None = None) -> pd.DataFrame:
    """A DataFrame for display: date, model, organisation, parameters (B), active (B),
    training tokens (B), tokens per parameter, what we learned; unknown cells are empty."""

    def billions(x: float | None) -> float | None:
        return None if x is None else x / 1e9

    rows = [
        {
            "date": e.date,
            "model": e.name,
            "organisation": e.organisation,
            "parameters (B)": billions(e.params),
            "active (B)": billions(e.active_params),
            "tokens (B)": billions(e.tokens),
            "tokens / param": e.tokens_per_param,
            "what we learned": e.learned,
        }
        for e in sorted(timeline(chapter), key=lambda e: e.date)
    ]
    return pd.DataFrame(rows)


def plot_timeline(entries: list[TimelineEntry]):
    """Two log-scale panels against the publication date: parameters (total, and active per
    token for MoE models) and training tokens. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, (ax_n, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    for e in entries:
        date = pd.Timestamp(e.date)
        for ax, value in ((ax_n, e.params), (ax_d, e.tokens)):
            if value:
                ax.scatter(date, value, color="C0" if ax is ax_n else "C2")
                ax.annotate(
                    e.name, (date, value), fontsize=8, xytext=(4, 4), textcoords="offset points"
                )
        if e.active_params:
            ax_n.scatter(date, e.active_params, color="C1", marker="x")
    ax_n.scatter([], [], color="C0", label="total parameters")
    ax_n.scatter([], [], color="C1", marker="x", label="active per token (MoE)")
    ax_n.legend(loc="lower right", fontsize=8)
    for ax, label in ((ax_n, "parameters"), (ax_d, "training tokens")):
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
