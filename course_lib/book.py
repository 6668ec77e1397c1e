"""Helpers for the book's executed chapters."""

from __future__ import annotations

from typing import Any

import numpy as np


def glue(name: str, value: Any, display: bool = False) -> None:
    """myst-nb's `glue`, with NumPy scalars stored as plain Python numbers.

    NumPy 2 writes a scalar's text as `np.float64(0.5)`, which a `{glue:text}` format spec
    such as `:.2f` cannot parse (a build warning); `.item()` gives the plain number.
    """
    from myst_nb import glue as myst_glue

    if isinstance(value, np.generic):
        value = value.item()
    myst_glue(name, value, display=display)
