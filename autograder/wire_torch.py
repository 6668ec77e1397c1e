"""The torch half of the wire format: tensors, dtypes, devices, generators, nn.Modules.

Loaded only once torch is. A module crosses as its class (course_lib or torch.nn only,
imported by name), its parameters, buffers, submodules and plain attributes; it is rebuilt
without running its `__init__`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

try:
    from autograder.wire import (
        MAX_DEPTH,
        Budget,
        WireError,
        _capped,
        _decode_array,
        _decode_simple,
        _encode_array,
        _encode_scalar,
        _field,
    )  # fmt: skip
except ImportError:  # inside the sandbox, next to wire.py
    from wire import (
        MAX_DEPTH,
        Budget,
        WireError,
        _capped,
        _decode_array,
        _decode_simple,
        _encode_array,
        _encode_scalar,
        _field,
    )  # fmt: skip


def encode_torch(x: Any, torch, budget: Budget) -> dict | None:
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        dtype = str(t.dtype)
        if t.is_floating_point() and t.element_size() < 4:  # bfloat16 has no NumPy dtype
            t = t.float()
        return {"t": "tensor", "dtype": dtype, "a": _encode_array(t.resolve_conj().numpy(), budget)}
    if isinstance(x, torch.dtype):
        return {"t": "dtype", "v": str(x).removeprefix("torch.")}
    if isinstance(x, torch.device):
        return {"t": "device", "v": str(x)}
    if isinstance(x, torch.Generator):
        state = x.get_state().numpy()
        return {"t": "generator", "device": str(x.device), "a": _encode_array(state, budget)}
    if isinstance(x, torch.nn.Module) and _transferable(type(x)):
        return _encode_module(x, budget)
    return None


def _encode_module(m, budget: Budget) -> dict:
    """A course_lib or torch.nn module as its class, tensors, submodules and plain attributes."""
    attrs = {}
    for key, value in vars(m).items():
        if not key.startswith("_") and key != "training":
            node = _encode_scalar(value, budget)
            if node is not None:
                attrs[key] = node
    return {
        "t": "module",
        "module": type(m).__module__,
        "name": type(m).__qualname__,
        "training": bool(m.training),
        "params": {
            k: [encode_torch(p.detach(), sys.modules["torch"], budget), bool(p.requires_grad)]
            for k, p in m._parameters.items()
            if p is not None
        },
        "buffers": {
            k: encode_torch(b, sys.modules["torch"], budget)
            for k, b in m._buffers.items()
            if b is not None
        },
        "children": {k: _encode_module(c, budget) for k, c in m._modules.items() if c is not None},
        "attrs": attrs,
    }


def decode_torch(t: str, node: dict, budget: Budget) -> Any:
    torch = sys.modules.get("torch")
    if t == "tensor":
        array = _decode_array(node.get("a"), budget)
        if torch is None:
            return array
        dtype = getattr(torch, _field(node, "dtype", str).removeprefix("torch."), None)
        tensor = torch.from_numpy(array)
        return tensor.to(dtype) if isinstance(dtype, torch.dtype) else tensor
    if torch is None:
        import torch  # a dtype, device or generator was sent: the sender had torch
    if t == "dtype":
        dtype = getattr(torch, _field(node, "v", str), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError("not a torch dtype")
        return dtype
    if t == "device":
        return torch.device(_capped(_field(node, "v", str), 40))
    generator = torch.Generator(device=_capped(_field(node, "device", str), 40))
    generator.set_state(torch.from_numpy(_decode_array(node.get("a"), budget)))
    return generator


def decode_module(node: dict, budget: Budget, depth: int):
    import torch

    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    cls = _module_class(_field(node, "module", str), _field(node, "name", str))
    m = cls.__new__(cls)
    torch.nn.Module.__init__(m)
    for key, (tensor, grad) in _field(node, "params", dict).items():
        value = decode_torch("tensor", tensor, budget)
        m.register_parameter(str(key), torch.nn.Parameter(value, requires_grad=bool(grad)))
    for key, tensor in _field(node, "buffers", dict).items():
        m.register_buffer(str(key), decode_torch("tensor", tensor, budget))
    for key, child in _field(node, "children", dict).items():
        m.add_module(str(key), decode_module(child, budget, depth + 1))
    for key, value in _field(node, "attrs", dict).items():
        if str(key).isidentifier() and not str(key).startswith("_"):
            setattr(m, str(key), _decode_simple(str(value.get("t")), value, budget))
    return m.train(bool(node.get("training")))


def _transferable(cls: type) -> bool:
    return cls.__module__.startswith(("course_lib.", "torch.nn."))


def _module_class(module: str, name: str) -> type:
    """A torch.nn.Module class of course_lib or torch.nn, by module and qualified name."""
    torch = sys.modules.get("torch")
    if not module.startswith(("course_lib.", "torch.nn.")) or torch is None:
        raise WireError("only course_lib and torch.nn modules can be sent")
    cls: Any = importlib.import_module(module)
    for part in name.split("."):
        cls = getattr(cls, part, None) if part.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise WireError(f"{module}.{name} is not a torch module class")
    return cls
