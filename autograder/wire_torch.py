"""The torch half of the wire format: tensors, dtypes, devices, generators, nn.Modules.

Loaded only once torch is. A module crosses as its class (course_lib or torch.nn only,
imported by name), its parameters, buffers, submodules and its other public attributes that
are data (numbers, strings, course_lib dataclasses such as a model's config); it is rebuilt
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
        _encode_array,
        _field,
        decode,
        encode,
    )  # fmt: skip
except ImportError:  # inside the sandbox, next to wire.py
    from wire import (
        MAX_DEPTH,
        Budget,
        WireError,
        _capped,
        _decode_array,
        _encode_array,
        _field,
        decode,
        encode,
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


def _encode_module(m, budget: Budget, seen: dict | None = None, path: str = "") -> dict:
    """A course_lib or torch.nn module as its class, tensors, submodules and data attributes.

    A parameter met twice (tied weights, such as GPT-2's embedding and output matrices) is
    sent once; later places name the first one (`{"same": "wte.weight"}`), so the copy has
    the same `named_parameters()` as the original.
    """
    torch = sys.modules["torch"]
    seen = {} if seen is None else seen
    attrs = {}
    for key, value in vars(m).items():
        if not key.startswith("_") and key != "training" and not isinstance(value, torch.nn.Module):
            node = encode(value, budget)  # data only: no handles inside a module
            if node.get("t") != "other":
                attrs[key] = node
    params: dict[str, Any] = {}
    for k, p in m._parameters.items():
        if p is None:  # nn.Linear(bias=False) has a bias that is None
            params[k] = None
        elif id(p) in seen:
            params[k] = {"same": seen[id(p)]}
        else:
            seen[id(p)] = path + k
            params[k] = [encode_torch(p.detach(), torch, budget), bool(p.requires_grad)]
    return {
        "t": "module",
        "module": type(m).__module__,
        "name": type(m).__qualname__,
        "training": bool(m.training),
        "params": params,
        "buffers": {
            k: None if b is None else encode_torch(b, torch, budget) for k, b in m._buffers.items()
        },
        "children": {
            k: _encode_module(c, budget, seen, f"{path}{k}.")
            for k, c in m._modules.items()
            if c is not None
        },
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


def decode_module(node: dict, budget: Budget, depth: int, made: dict | None = None, path: str = ""):
    import torch

    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    made = {} if made is None else made  # path -> Parameter decoded so far (for tied weights)
    cls = _module_class(_field(node, "module", str), _field(node, "name", str))
    m = cls.__new__(cls)
    torch.nn.Module.__init__(m)
    for key, entry in _field(node, "params", dict).items():
        if entry is None:
            param = None
        elif isinstance(entry, dict) and isinstance(entry.get("same"), str):
            if entry["same"] not in made:
                raise WireError("a tied parameter names no earlier parameter")
            param = made[entry["same"]]
        elif isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], dict):
            value = decode_torch("tensor", entry[0], budget)
            param = made[path + str(key)] = torch.nn.Parameter(value, requires_grad=bool(entry[1]))
        else:
            raise WireError("a parameter is not a [tensor, requires_grad] pair")
        m.register_parameter(str(key), param)
    for key, tensor in _field(node, "buffers", dict).items():
        if not (tensor is None or isinstance(tensor, dict)):
            raise WireError("a buffer is not a tensor")
        m.register_buffer(
            str(key), None if tensor is None else decode_torch("tensor", tensor, budget)
        )
    for key, child in _field(node, "children", dict).items():
        if not isinstance(child, dict):
            raise WireError("a submodule is not a module node")
        m.add_module(str(key), decode_module(child, budget, depth + 1, made, f"{path}{key}."))
    for key, value in _field(node, "attrs", dict).items():
        if str(key).isidentifier() and not str(key).startswith("_") and key != "training":
            setattr(m, str(key), decode(value, budget, None, depth + 1))
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
