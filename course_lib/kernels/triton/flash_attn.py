"""FlashAttention as a Triton kernel (Dao 2023, FlashAttention-2, arXiv:2307.08691).

One program computes one block of BLOCK_M queries of one (batch, head): it loads the query
block once, streams key/value blocks of BLOCK_N through on-chip memory with the online
softmax, and writes the normalised output and the log-sum-exp. Key blocks outside the
causal/sliding-window band are never loaded. Every load is masked, so ragged lengths and
head dims that are not powers of two are safe. Same conventions as
`course_lib.kernels.flash` (GQA by index arithmetic: query head h reads kv head h // G).
Triton code cannot call PyTorch, so the mask and the online-softmax update below are
transcriptions of `course_lib.kernels.attention.visible` and
`course_lib.kernels.flash.online_softmax_step`; the tests hold the outputs equal.

On CUDA it runs compiled; on CPU only under TRITON_INTERPRET=1 (fp32/fp16 there).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from course_lib.kernels.attention import check_attention_inputs
from course_lib.kernels.dispatch import needs_grad
from course_lib.kernels.flash import with_backward


@triton.jit
def _flash_fwd_kernel(
    Q, K, V, Out, Lse,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    stride_ob, stride_oh, stride_ot, stride_od,
    n_heads, group, t_q, t_k, head_dim, head_dim_v, window, scale,
    CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // n_heads
    h = pid_bh % n_heads
    h_kv = h // group
    offset = t_k - t_q  # query i sits at absolute position i + offset

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    row_ok = offs_m < t_q

    q_ptrs = (
        Q
        + b * stride_qb
        + h * stride_qh
        + offs_m[:, None] * stride_qt
        + offs_d[None, :] * stride_qd
    )
    q = tl.load(q_ptrs, mask=row_ok[:, None] & (offs_d[None, :] < head_dim), other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)

    q_first = pid_m * BLOCK_M + offset
    q_last = tl.minimum(pid_m * BLOCK_M + BLOCK_M, t_q) - 1 + offset
    lo = 0
    hi = t_k
    if HAS_WINDOW:
        lo = tl.maximum(q_first - window + 1, 0)
        lo = (lo // BLOCK_N) * BLOCK_N
    if CAUSAL:
        hi = tl.minimum(q_last + 1, t_k)

    k_base = K + b * stride_kb + h_kv * stride_kh
    v_base = V + b * stride_vb + h_kv * stride_vh
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
        col_ok = offs_n < hi
        k = tl.load(
            k_base + offs_n[None, :] * stride_kt + offs_d[:, None] * stride_kd,
            mask=col_ok[None, :] & (offs_d[:, None] < head_dim),
            other=0.0,
        )  # (BLOCK_D, BLOCK_N)
        s = tl.dot(q, k, input_precision=PRECISION) * scale  # (BLOCK_M, BLOCK_N)
        ok = col_ok[None, :]
        if CAUSAL:
            ok = ok & (offs_n[None, :] <= offs_m[:, None] + offset)
        if HAS_WINDOW:
            ok = ok & (offs_n[None, :] > offs_m[:, None] + offset - window)
        s = tl.where(ok, s, float("-inf"))

        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(s - m_safe[:, None])
        alpha = tl.exp(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(
            v_base + offs_n[:, None] * stride_vt + offs_dv[None, :] * stride_vd,
            mask=col_ok[:, None] & (offs_dv[None, :] < head_dim_v),
            other=0.0,
        )  # (BLOCK_N, BLOCK_DV)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # rows past t_q only; never stored
    out = acc / l_safe[:, None]
    o_ptrs = (
        Out
        + b * stride_ob
        + h * stride_oh
        + offs_m[:, None] * stride_ot
        + offs_dv[None, :] * stride_od
    )
    tl.store(
        o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None] & (offs_dv[None, :] < head_dim_v)
    )
    tl.store(Lse + pid_bh * t_q + offs_m, m_i + tl.log(l_safe), mask=row_ok)


def flash_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    window: int | None = None,
    *,
    scale: float | None = None,
    block_q: int = 64,
    block_k: int = 64,
    return_lse: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Triton FlashAttention forward; same contract as `course_lib.kernels.flash_attention`.

    q (B, H, T_q, D), k (B, H_kv, T_k, D), v (B, H_kv, T_k, D_v); any strides. `out`, if
    given, is written in place (B, H, T_q, D_v) and returned. Block sizes must be powers
    of two (>= 16 on a GPU). The log-sum-exp (B, H, T_q) is float32. Differentiable: the
    backward is `course_lib.kernels.flash`'s tile recomputation (FlashAttention-2) in PyTorch,
    from this kernel's output and log-sum-exp.
    """
    check_attention_inputs(q, k, v, causal, window)
    if out is not None and needs_grad(q, k, v):
        raise ValueError("out= writes in place, which autograd cannot track: drop out= to train")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        return _launch(q, k, v, causal, window, scale, block_q, block_k, out)

    result, lse = with_backward(forward, q, k, v, causal, window, scale)
    return (result, lse) if return_lse else result


def _launch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    window: int | None,
    scale: float,
    block_q: int,
    block_k: int,
    out: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward kernel: out (B, H, T_q, D_v) in q's dtype, lse (B, H, T_q) float32."""
    B, H, T_q, D = q.shape
    H_kv, T_k, D_v = k.shape[1], k.shape[2], v.shape[3]
    if out is None:
        out = torch.empty(B, H, T_q, D_v, dtype=q.dtype, device=q.device)
    lse = torch.empty(B, H, T_q, dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(T_q, block_q), B * H)
    _flash_fwd_kernel[grid](
        q, k, v, out, lse,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        H, H // H_kv, T_q, T_k, D, D_v, window or 0, scale,
        CAUSAL=causal, HAS_WINDOW=window is not None,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        BLOCK_M=block_q, BLOCK_N=block_k,
        BLOCK_D=max(16, triton.next_power_of_2(D)), BLOCK_DV=max(16, triton.next_power_of_2(D_v)),
    )  # fmt: skip
    return out, lse
