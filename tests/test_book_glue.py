"""course_lib.book.glue hands myst-nb plain Python numbers, which `{glue:text}` can format."""

import myst_nb
import numpy as np

from course_lib.book import glue


def test_numpy_scalars_are_glued_as_python_numbers(monkeypatch):
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: value}))
    glue("f", np.float64(0.5))
    glue("i", np.int64(3))
    glue("s", "text")
    assert seen == {"f": 0.5, "i": 3, "s": "text"}
    assert type(seen["f"]) is float and type(seen["i"]) is int
