"""The only thing that crosses the sandbox boundary: plain data as JSON, never pickle.

A value becomes a tree of tagged nodes: numbers (floats as exact hex), strings, lists,
tuples, sets, dicts, NumPy arrays and scalars (raw little-endian bytes of a whitelisted dtype,
base64), torch tensors, dtypes, devices and random generators (their state), slices, and
course_lib dataclasses (their fields). An object that is none of these stays where it is:
`Refs` turns it into a handle (the sandbox keeps the object; the grader gets a proxy), or it
becomes an opaque `Unsupported` placeholder. `decode` checks every node, dtype, shape and
byte count, so a hostile process can send wrong data but never code.

This file is copied next to the sandbox harness, so it imports only the standard library and
NumPy (torch only when it is already loaded).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import sys
from typing import Any

import numpy as np

MAX_DEPTH = 24
MAX_ITEMS = 100_000  # list items or dict entries per node
MAX_TEXT = 100_000  # characters of one string
_DTYPES = {  # dtype.str of the arrays that may cross, all little-endian or byte-sized
    "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
    "<f2", "<f4", "<f8", "<c8", "<c16",
}  # fmt: skip
_BIT_GENERATORS = {"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"}
_PY_TYPES = {"int": int, "float": float, "bool": bool, "complex": complex, "str": str}


class WireError(ValueError):
    """A message that does not follow the format (or exceeds a size limit)."""


class Unsupported:
    """Stands for a value of a type that cannot cross the boundary (e.g. a custom object)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


class Refs:
    """How objects that are not data cross: as handles. The default refuses them."""

    def handle(self, x: Any) -> dict | None:
        """A node standing for `x` ({"t": "ref"} or {"t": "name"}), or None."""
        return None

    def resolve(self, node: dict) -> Any:
        """The object a "ref" or "name" node stands for."""
        return Unsupported(str(node.get("type", "object"))[:80])


class Budget:
    """Counts the bytes of array data decoded or encoded so far against a limit."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise WireError(f"more than {self.limit} bytes of array data")


def encode(x: Any, budget: Budget, refs: Refs | None = None, depth: int = 0) -> dict:
    """`x` as a JSON-able tree; raises WireError for data beyond the budget or depth."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    node = _encode_scalar(x, budget)
    if node is not None:
        return node
    inner = (budget, refs, depth + 1)
    if "torch" in sys.modules:
        node = _torch().encode_torch(x, sys.modules["torch"], budget)
        if node is not None:
            return node
    if isinstance(x, (list, tuple)):
        items = list(x)
        _check_len(len(items))
        kind = "tuple" if isinstance(x, tuple) else "list"
        return {"t": kind, "v": [encode(v, *inner) for v in items]}
    if isinstance(x, (set, frozenset)):
        _check_len(len(x))
        kind = "frozenset" if isinstance(x, frozenset) else "set"
        return {"t": kind, "v": [encode(v, *inner) for v in x]}
    if isinstance(x, dict):
        items = list(x.items())
        _check_len(len(items))
        return {"t": "dict", "v": [[encode(k, *inner), encode(v, *inner)] for k, v in items]}
    if isinstance(x, slice):
        return {"t": "slice", "v": [encode(v, *inner) for v in (x.start, x.stop, x.step)]}
    if isinstance(x, np.random.Generator):
        state = x.bit_generator.state
        return {"t": "npgen", "kind": state["bit_generator"], "state": _json_state(state)}
    if dataclasses.is_dataclass(x) and not isinstance(x, type) and _course_lib(type(x)):
        fields = [f.name for f in dataclasses.fields(x) if f.init]
        return {
            "t": "dataclass",
            "module": type(x).__module__,
            "name": type(x).__qualname__,
            "v": {f: encode(getattr(x, f), *inner) for f in fields},
        }
    handle = refs.handle(x) if refs is not None else None
    return handle or {"t": "other", "type": _capped(type(x).__name__, 80)}


def _encode_scalar(x: Any, budget: Budget) -> dict | None:
    if x is None:
        return {"t": "none"}
    if x is Ellipsis:
        return {"t": "ellipsis"}
    if isinstance(x, np.generic):  # before float: np.float64 is a subclass of float
        if isinstance(x, (np.str_, np.bytes_)):
            return _encode_scalar(x.item(), budget)
        return {"t": "scalar", "a": _encode_array(np.asarray(x), budget)}
    if isinstance(x, bool):
        return {"t": "bool", "v": bool(x)}
    if isinstance(x, int):
        return {"t": "int", "v": str(int(x))}
    if isinstance(x, float):
        return {"t": "float", "v": float(x).hex()}
    if isinstance(x, complex):
        return {"t": "complex", "re": x.real.hex(), "im": x.imag.hex()}
    if isinstance(x, str):
        return {"t": "str", "v": _capped(str(x))}
    if isinstance(x, bytes):
        budget.take(len(x))
        return {"t": "bytes", "b64": base64.b64encode(bytes(x)).decode()}
    if isinstance(x, np.ndarray):
        return {"t": "array", "a": _encode_array(np.array(x, subok=False), budget)}
    if isinstance(x, np.dtype):
        return {"t": "npdtype", "v": x.str if x.kind in "biufc" else "?"}
    if isinstance(x, type) and issubclass(x, np.generic) and x.__module__ == "numpy":
        return {"t": "nptype", "v": x.__name__}
    if isinstance(x, type) and x.__name__ in _PY_TYPES and x is _PY_TYPES[x.__name__]:
        return {"t": "pytype", "v": x.__name__}
    return None


def decode(node: Any, budget: Budget, refs: Refs | None = None, depth: int = 0) -> Any:
    """The value of a tree made by `encode`, checked node by node."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict) or not isinstance(node.get("t"), str):
        raise WireError("a node is not a tagged object")
    t, inner = node["t"], (budget, refs, depth + 1)
    simple = _decode_simple(t, node, budget)
    if simple is not _NOTHING:
        return simple
    if t in ("list", "tuple"):
        items = _field(node, "v", list)
        _check_len(len(items))
        values = [decode(v, *inner) for v in items]
        return tuple(values) if t == "tuple" else values
    if t in ("set", "frozenset"):
        items = _field(node, "v", list)
        _check_len(len(items))
        try:
            members = set(decode(v, *inner) for v in items)
        except TypeError:
            raise WireError("a set member is not hashable") from None
        return frozenset(members) if t == "frozenset" else members
    if t == "dict":
        items = _field(node, "v", list)
        _check_len(len(items))
        out = {}
        for pair in items:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("a dict entry is not a [key, value] pair")
            key = decode(pair[0], *inner)
            try:
                out[key] = decode(pair[1], *inner)
            except TypeError:
                raise WireError("a dict key is not hashable") from None
        return out
    if t == "slice":
        parts = _field(node, "v", list)
        if len(parts) != 3:
            raise WireError("a slice needs start, stop and step")
        return slice(*(decode(p, *inner) for p in parts))
    if t == "dataclass":
        cls = _course_lib_class(_field(node, "module", str), _field(node, "name", str))
        fields = _field(node, "v", dict)
        return cls(**{str(k): decode(v, *inner) for k, v in fields.items()})
    if t == "module":
        return _torch().decode_module(node, budget, depth)
    if t in ("ref", "name"):
        return (refs or Refs()).resolve(node)
    raise WireError(f"unknown node type {t[:20]!r}")


_NOTHING = object()


def _decode_simple(t: str, node: dict, budget: Budget) -> Any:
    if t == "none":
        return None
    if t == "ellipsis":
        return Ellipsis
    if t == "bool":
        return bool(_field(node, "v", bool))
    if t == "int":
        text = _field(node, "v", str)
        if len(text) > 4000:
            raise WireError("integer too long")
        return int(text)
    if t == "float":
        return float.fromhex(_field(node, "v", str))
    if t == "complex":
        return complex(
            float.fromhex(_field(node, "re", str)), float.fromhex(_field(node, "im", str))
        )
    if t == "str":
        return _capped(_field(node, "v", str))
    if t == "bytes":
        data = base64.b64decode(_field(node, "b64", str), validate=True)
        budget.take(len(data))
        return data
    if t in ("array", "scalar"):
        array = _decode_array(node.get("a"), budget)
        return array[()] if t == "scalar" else array
    if t == "npdtype":
        return np.dtype(_allowed(_field(node, "v", str), _DTYPES))
    if t == "nptype":
        kind = getattr(np, _field(node, "v", str), None)
        if not (isinstance(kind, type) and issubclass(kind, np.generic)):
            raise WireError("not a NumPy scalar type")
        return kind
    if t == "pytype":
        return _PY_TYPES[_allowed(_field(node, "v", str), _PY_TYPES)]
    if t == "npgen":
        kind = _allowed(_field(node, "kind", str), _BIT_GENERATORS)
        bit_generator = getattr(np.random, kind)()
        bit_generator.state = _field(node, "state", dict)
        return np.random.Generator(bit_generator)
    if t in ("tensor", "dtype", "device", "generator"):
        return _torch().decode_torch(t, node, budget)
    if t == "other":
        return Unsupported(_capped(_field(node, "type", str), 80))
    return _NOTHING


def _encode_array(a: np.ndarray, budget: Budget) -> dict:
    if a.dtype.kind not in "biufc":
        raise WireError(f"arrays of dtype {a.dtype} cannot be sent back (numbers only)")
    a = np.require(a.astype(a.dtype.newbyteorder("<"), copy=False), requirements="C")  # keeps 0-d
    budget.take(a.nbytes)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "b64": base64.b64encode(a).decode()}


def _decode_array(node: Any, budget: Budget) -> np.ndarray:
    if not isinstance(node, dict):
        raise WireError("an array node is malformed")
    dtype = _allowed(_field(node, "dtype", str), _DTYPES)
    shape = _field(node, "shape", list)
    if len(shape) > 32 or not all(type(n) is int and 0 <= n < 2**40 for n in shape):
        raise WireError("an array shape is malformed")
    data = base64.b64decode(_field(node, "b64", str), validate=True)
    budget.take(len(data))
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if expected != len(data):
        raise WireError(f"array data has {len(data)} bytes, shape and dtype need {expected}")
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()


def _torch():
    """The torch half of the format (a sibling module, in the package or in the sandbox)."""
    try:
        from autograder import wire_torch
    except ImportError:
        import wire_torch
    return wire_torch


def _course_lib(cls: type) -> bool:
    return cls.__module__.startswith("course_lib.")


def _course_lib_class(module: str, name: str) -> type:
    """A dataclass of course_lib (trusted code) by module and qualified name, nothing else."""
    if not module.startswith("course_lib.") or not all(p.isidentifier() for p in name.split(".")):
        raise WireError("only course_lib dataclasses can be sent")
    cls: Any = importlib.import_module(module)
    for part in name.split("."):
        cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise WireError(f"{module}.{name} is not a course_lib dataclass")
    return cls


def _json_state(state: Any) -> Any:
    """A bit generator's state with NumPy integers made plain (for JSON)."""
    if isinstance(state, dict):
        return {str(k): _json_state(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return [int(v) for v in state.ravel()]
    return int(state) if isinstance(state, np.integer) else state


def _allowed(value: str, allowed) -> str:
    if value not in allowed:
        raise WireError(f"{value[:20]!r} is not allowed")
    return value


def _field(node: dict, key: str, kind: type) -> Any:
    value = node.get(key)
    if not isinstance(value, kind):
        raise WireError(f"field {key!r} of a {node.get('t')!r} node is not a {kind.__name__}")
    return value


def _check_len(n: int) -> None:
    if n > MAX_ITEMS:
        raise WireError(f"more than {MAX_ITEMS} items in one list or dict")


def _capped(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
