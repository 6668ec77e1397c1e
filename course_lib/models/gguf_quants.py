"""Dequantize llama.cpp's GGML block formats: Q4_0, Q4_1, Q8_0, Q4_K, Q6_K (and F32/F16/BF16).

A GGML tensor is stored row by row, each row cut into blocks of consecutive weights; a block
holds its scale(s) as float16 followed by the integer codes (layouts from ggml's
`ggml-common.h`, dequantization as `dequantize_row_*` in `ggml-quants.c`):

- Q4_0, 32 weights in 18 bytes: d (f16), 16 bytes of nibbles; byte j holds weight j in its
  low nibble and weight j + 16 in its high nibble. w = d * (q - 8).
- Q4_1, 32 weights in 20 bytes: d, m (f16), 16 bytes of nibbles as Q4_0. w = d * q + m.
- Q8_0, 32 weights in 34 bytes: d (f16), 32 int8 codes. w = d * q.
- Q4_K, a super-block of 256 weights in 144 bytes: d, dmin (f16), 12 bytes packing eight
  6-bit (scale, min) pairs, 128 bytes of nibbles. Sub-block s (32 weights) has
  w = (d * scale_s) * q - (dmin * min_s); bytes 32c … 32c+31 hold sub-block 2c in their low
  nibbles and 2c + 1 in their high nibbles.
- Q6_K, 256 weights in 210 bytes: ql (128 bytes, low 4 bits), qh (64 bytes, high 2 bits),
  16 int8 scales, d (f16). Sixteen sub-blocks of 16: w = (d * scale_s) * (q - 32).

Every product is computed in float32 in the order ggml uses, so the result is bit-identical
to `gguf.quants.dequantize` (checked in tests/test_gguf.py).
"""

from __future__ import annotations

import torch

# GGML type id -> (name, weights per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    8: ("Q8_0", 32, 34),
    12: ("Q4_K", 256, 144),
    14: ("Q6_K", 256, 210),
    30: ("BF16", 1, 2),
}
GGML_TYPE_IDS = {name: type_id for type_id, (name, _, _) in GGML_TYPES.items()}


def _f16(raw: torch.Tensor) -> torch.Tensor:
    """uint8 (n, 2) little-endian float16 bytes -> float32 (n, 1), exactly."""
    return raw.contiguous().view(torch.float16).float()


def _nibbles(qs: torch.Tensor) -> torch.Tensor:
    """uint8 (..., k) -> (..., 2, k): the low nibbles, then the high nibbles."""
    return torch.stack((qs & 0x0F, qs >> 4), dim=-2)


def _q4_0(blocks: torch.Tensor) -> torch.Tensor:  # (n, 18) -> (n, 32)
    d = _f16(blocks[:, :2])
    q = _nibbles(blocks[:, 2:]).reshape(-1, 32).to(torch.int8) - 8
    return d * q.float()


def _q4_1(blocks: torch.Tensor) -> torch.Tensor:  # (n, 20) -> (n, 32)
    d, m = _f16(blocks[:, :2]), _f16(blocks[:, 2:4])
    q = _nibbles(blocks[:, 4:]).reshape(-1, 32).float()
    return d * q + m


def _q8_0(blocks: torch.Tensor) -> torch.Tensor:  # (n, 34) -> (n, 32)
    d = _f16(blocks[:, :2])
    return blocks[:, 2:].contiguous().view(torch.int8).float() * d


def _k_scales(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Q4_K's 12 bytes -> eight 6-bit scales and eight 6-bit mins, each (n, 8).

    Bytes 0-3 hold scales 0-3 (low 6 bits), bytes 4-7 mins 0-3; for sub-blocks 4-7 the low
    4 bits come from bytes 8-11 (scale low nibble, min high nibble) and the top 2 bits from
    the top 2 bits of bytes 0-3 (scales) and 4-7 (mins).
    """
    a, b, c = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    scale = torch.cat((a & 0x3F, (c & 0x0F) | ((a >> 2) & 0x30)), dim=1)
    minimum = torch.cat((b & 0x3F, (c >> 4) | ((b >> 2) & 0x30)), dim=1)
    return scale, minimum


def _q4_k(blocks: torch.Tensor) -> torch.Tensor:  # (n, 144) -> (n, 256)
    n = blocks.shape[0]
    d, dmin = _f16(blocks[:, 0:2]), _f16(blocks[:, 2:4])
    scale, minimum = _k_scales(blocks[:, 4:16])
    d_sub = (d * scale.float())[..., None]  # (n, 8, 1)
    m_sub = (dmin * minimum.float())[..., None]
    q = _nibbles(blocks[:, 16:].reshape(n, 4, 32)).reshape(n, 8, 32).float()
    return (d_sub * q - m_sub).reshape(n, 256)


def _q6_k(blocks: torch.Tensor) -> torch.Tensor:  # (n, 210) -> (n, 256)
    n = blocks.shape[0]
    ql, qh = blocks[:, :128], blocks[:, 128:192]
    scale = blocks[:, 192:208].contiguous().view(torch.int8).float()  # (n, 16)
    d = _f16(blocks[:, 208:210])
    low = _nibbles(ql.reshape(n, 2, 64)).reshape(n, 8, 32)
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.uint8, device=blocks.device)
    high = ((qh.reshape(n, 2, 1, 32) >> shifts[:, None]) & 0x03).reshape(n, 8, 32)
    q = (low | (high << 4)).to(torch.int8) - 32
    return ((d * scale)[..., None] * q.reshape(n, 16, 16).float()).reshape(n, 256)


_DEQUANTIZERS = {"Q4_0": _q4_0, "Q4_1": _q4_1, "Q8_0": _q8_0, "Q4_K": _q4_k, "Q6_K": _q6_k}


def dequantize(raw: torch.Tensor, type_id: int, shape: tuple[int, ...]) -> torch.Tensor:
    """float32 tensor of `shape` (PyTorch order, last dimension contiguous) from GGML bytes.

    raw: uint8, the tensor's bytes (any shape); type_id: the GGML type (see `GGML_TYPES`).
    """
    if type_id not in GGML_TYPES:
        raise NotImplementedError(
            f"GGML type {type_id} is not supported; course_lib reads "
            f"{sorted(name for name, _, _ in GGML_TYPES.values())}"
        )
    name, block, nbytes = GGML_TYPES[type_id]
    flat = raw.reshape(-1)
    if name == "F32":
        return flat.view(torch.float32).reshape(shape).clone()
    if name in ("F16", "BF16"):
        return flat.view(torch.float16 if name == "F16" else torch.bfloat16).float().reshape(shape)
    if flat.numel() % nbytes:
        raise ValueError(f"{flat.numel()} bytes is not a whole number of {name} blocks")
    return _DEQUANTIZERS[name](flat.view(-1, nbytes)).reshape(shape)
