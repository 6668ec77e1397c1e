"""Compare a learner's output with the reference's and describe the first difference.

Works for NumPy arrays, torch tensors, Python and NumPy scalars, strings, and tuples, lists
or dicts of those. A difference in type or shape is reported apart from a difference in
values, so "you returned the wrong shape" never reads as "your numbers are wrong".
torch is never imported here: a tensor is recognised only when torch is already loaded.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

_SHOW = 6  # arrays with more elements are summarised
_WIDTH = 160  # longest repr of an array
_NUMERIC = "biufc"  # NumPy dtype kinds compared as numbers


@dataclass(frozen=True)
class Mismatch:
    """The first difference found: `kind` is "type", "shape" or "value"."""

    kind: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind.upper()} mismatch at {self.where}: {self.message}"


def is_tensor(x: Any) -> bool:
    """True when `x` is a torch.Tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def describe(x: Any) -> str:
    """A short, one-line repr: type, shape and dtype, and the first few values."""
    if is_tensor(x):
        values = _values_repr(_tensor_to_numpy(x))
        return f"tensor(shape={tuple(x.shape)}, dtype={x.dtype}, device={x.device}) {values}"
    if isinstance(x, np.ndarray):
        return f"array(shape={x.shape}, dtype={x.dtype}) {_values_repr(x)}"
    if isinstance(x, (str, bytes)) or x is None:
        text = repr(str(x) if isinstance(x, str) else x)  # 'queen', not np.str_('queen')
        return text if len(text) <= 40 else text[:36] + "...'"
    if isinstance(x, (bool, int, float, complex, np.bool_, np.number)):
        return _number_repr(x)
    if isinstance(x, dict):
        keys = ", ".join(repr(k) for k in list(x)[:_SHOW])
        more = ", ..." if len(x) > _SHOW else ""
        first = next(iter(x.values()), None)
        values = f"; values like {describe(first)}" if x else ""
        return f"dict with {len(x)} keys ({keys}{more}){values}"
    if isinstance(x, (list, tuple)):
        array = _to_numeric_array(x) if x else None
        if array is not None:
            shape = f", shape {array.shape}" if array.ndim > 1 else ""
            return f"{type(x).__name__}{shape} {_values_repr(array)}"
        items = ", ".join(describe(v) for v in x[:3])
        more = ", ..." if len(x) > 3 else ""
        return f"{type(x).__name__} of {len(x)} [{items}{more}]"
    return f"{type(x).__name__} object"


def compare(got: Any, expected: Any, *, atol: float, rtol: float, where: str = "output"):
    """The first `Mismatch` between `got` and `expected`, or None when they agree.

    Floating-point values agree when `|got - expected| <= atol + rtol * |expected|`
    (NaN equals NaN); integers, booleans and strings must be equal exactly.
    """
    if isinstance(expected, (tuple, list)):
        return _compare_sequence(got, expected, atol=atol, rtol=rtol, where=where)
    if isinstance(expected, dict):
        return _compare_dict(got, expected, atol=atol, rtol=rtol, where=where)
    if isinstance(expected, (str, bytes)) or expected is None:
        return _compare_exact(got, expected, where=where)
    if is_tensor(expected):
        if not is_tensor(got):
            return Mismatch(
                "type", where, f"expected a torch.Tensor, got {_type_name(got)}: {describe(got)}"
            )
        return _compare_arrays(
            _tensor_to_numpy(got), _tensor_to_numpy(expected), atol=atol, rtol=rtol, where=where
        )
    if isinstance(expected, np.ndarray) and expected.dtype.kind not in _NUMERIC:  # e.g. words
        got_array = None if is_tensor(got) or got is None else np.asarray(got, dtype=object)
        if got_array is None:
            return Mismatch("type", where, f"expected an array, got {describe(got)}")
        return _compare_arrays(got_array, expected, atol=atol, rtol=rtol, where=where)
    if isinstance(expected, (np.ndarray, np.generic, int, float, complex)):
        got_array = _to_numeric_array(got)
        if got_array is None:
            hint = " (did you forget to `return` it?)" if got is None else ""
            wanted = "a number" if np.ndim(expected) == 0 else "an array"
            return Mismatch("type", where, f"expected {wanted}, got {describe(got)}{hint}")
        return _compare_arrays(got_array, np.asarray(expected), atol=atol, rtol=rtol, where=where)
    return _compare_exact(got, expected, where=where)


def _compare_exact(got, expected, *, where):
    same = got is None if expected is None else type(got) is not bool and _equal(got, expected)
    if same:
        return None
    return Mismatch("value", where, f"expected {describe(expected)}, got {describe(got)}")


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. an array compared with a string
        return False


def _compare_sequence(got, expected, *, atol, rtol, where):
    kind = type(expected).__name__
    if not isinstance(got, (tuple, list)):
        return Mismatch(
            "type",
            where,
            f"expected a {kind} of {len(expected)} values, got {describe(got)}",
        )
    if len(got) != len(expected):
        return Mismatch(
            "shape", where, f"expected a {kind} of {len(expected)} values, got {len(got)} values"
        )
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        mismatch = compare(g, e, atol=atol, rtol=rtol, where=f"{where}[{i}]")
        if mismatch is not None:
            return mismatch
    return None


def _compare_dict(got, expected, *, atol, rtol, where):
    if not isinstance(got, dict):
        return Mismatch("type", where, f"expected a dict, got {describe(got)}")
    if set(got) != set(expected):
        missing = sorted(map(repr, set(expected) - set(got)))
        extra = sorted(map(repr, set(got) - set(expected)))
        return Mismatch("shape", where, f"keys differ: missing {missing}, unexpected {extra}")
    for key in expected:
        mismatch = compare(got[key], expected[key], atol=atol, rtol=rtol, where=f"{where}[{key!r}]")
        if mismatch is not None:
            return mismatch
    return None


def _compare_arrays(got: np.ndarray, expected: np.ndarray, *, atol, rtol, where):
    if got.shape != expected.shape:
        wanted = "a single number, shape ()" if expected.ndim == 0 else f"shape {expected.shape}"
        return Mismatch("shape", where, f"expected {wanted}, got shape {got.shape}")
    exact = expected.dtype.kind not in "fc"  # integers, booleans, strings: no tolerance
    if exact:
        bad = np.asarray(got != expected, dtype=bool)  # (*shape,)
    else:
        bad = ~np.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)  # (*shape,)
    if not np.any(bad):
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    at = f"{where}[{', '.join(map(str, first))}]" if first else where
    g, e = got[first], expected[first]
    message = f"expected {describe(e)}, got {describe(g)}"
    if not exact and np.isnan(g) and not np.isnan(e):
        message += " (NaN often comes from 0/0, e.g. dividing by the norm of a zero vector)"
    elif not exact:
        diff, allowed = abs(g - e), atol + rtol * abs(e)
        message += (
            f" (|difference| {diff:.3g} > allowed {allowed:.3g}"
            f" = atol {atol:g} + rtol {rtol:g} * |expected|)"
        )
    if expected.size > 1:
        message += (
            f"; {int(np.sum(bad))} of {expected.size} elements differ"
            f"\n    expected: {_values_repr(expected)}\n    got:      {_values_repr(got)}"
        )
    return Mismatch("value", at, message)


def _to_numeric_array(x: Any) -> np.ndarray | None:
    if is_tensor(x):
        return _tensor_to_numpy(x)
    if x is None or isinstance(x, (str, bytes, dict)):
        return None
    try:
        array = np.asarray(x)
    except (TypeError, ValueError):
        return None
    return array if array.dtype.kind in _NUMERIC else None


def _tensor_to_numpy(t) -> np.ndarray:
    t = t.detach().cpu()
    if t.is_floating_point() and t.element_size() < 4:  # float16 / bfloat16: NumPy lacks bf16
        t = t.float()
    return t.resolve_conj().numpy()


def _number_repr(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (complex, np.complexfloating)):
        return f"{complex(x):.6g}"
    text = f"{float(x):.6g}"
    return text if any(ch in text for ch in ".eni") else text + ".0"  # 20.0, not 20


def _values_repr(a: np.ndarray) -> str:
    if a.ndim == 0:
        return _number_repr(a[()])
    text = np.array2string(
        a, precision=4, threshold=_SHOW, edgeitems=2, separator=", ", max_line_width=10**6
    )
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def _type_name(x: Any) -> str:
    return f"{type(x).__module__}.{type(x).__name__}".removeprefix("builtins.")
