"""Accelerator catalog: peak dense throughput per dtype, memory capacity and bandwidth.

Every number comes from `course_lib/data/accelerators.json`, where each entry names its
datasheet. Units inside the library are SI: FLOP/s, bytes, bytes/s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).resolve().parent.parent / "data" / "accelerators.json"
GIB = 2**30
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5,
}  # fmt: skip


@dataclass(frozen=True)
class Accelerator:
    """One accelerator chip as its datasheet describes it (dense peaks, no sparsity)."""

    key: str
    name: str
    peak_tflops: dict[str, float]  # dtype -> dense TFLOP/s (TOP/s for int8)
    memory_bytes: float
    bandwidth: float  # bytes/s
    source: str
    note: str = ""

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Peak dense FLOP/s for matmuls in `dtype`; KeyError if the chip has no such unit."""
        if dtype not in self.peak_tflops:
            raise KeyError(f"{self.name} lists no {dtype} peak; it has {sorted(self.peak_tflops)}")
        return self.peak_tflops[dtype] * 1e12

    def ridge_point(self, dtype: str = "bf16") -> float:
        """Arithmetic intensity (FLOP/byte) where the roofline turns from memory- to compute-bound."""
        return self.peak_flops(dtype) / self.bandwidth


@cache
def _catalog() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text())


def _accelerator(key: str, entry: dict[str, Any]) -> Accelerator:
    unit = GIB if entry.get("memory_unit") == "GiB" else 1e9
    return Accelerator(
        key=key,
        name=entry["name"],
        peak_tflops=dict(entry["peak_tflops"]),
        memory_bytes=entry["memory_gb"] * unit,
        bandwidth=entry["bandwidth_gbs"] * 1e9,
        source=entry["source"],
        note=entry.get("note", ""),
    )


ACCELERATORS: dict[str, Accelerator] = {
    key: _accelerator(key, entry) for key, entry in _catalog()["accelerators"].items()
}


def get_accelerator(name: str) -> Accelerator:
    """The catalog entry for a key such as "h100-sxm" (see `ACCELERATORS`)."""
    try:
        return ACCELERATORS[name]
    except KeyError:
        raise KeyError(f"unknown accelerator {name!r}; known: {sorted(ACCELERATORS)}") from None


def published(name: str) -> dict[str, Any]:
    """A published figure kept beside the catalog (e.g. "palm-540b-mfu"), with its source."""
    return _catalog()["published"][name]
