"""Mixture of experts: top-k routers, sparse MoE (Mixtral), DeepSeekMoE, load-balancing loss.

API
- `Routing(logits, weights, indices)`: NamedTuple; logits (N, E) float32, weights and
  indices (N, k) (the gate values, float32, and the chosen experts)
- `top_k_routing(logits, k, *, order="softmax_topk", renormalize=True) -> (weights, indices)`
- `TopKRouter(dim, n_experts, k, *, order="softmax_topk", renormalize=True, bias=False)`:
  `weight` (E, dim), `bias` (E,) if bias (gpt-oss)
- `DeepSeekRouter(dim, n_experts, k, *, n_group=1, topk_group=1, norm_topk_prob=True,
  routed_scaling_factor=1.0)`: `weight` (E, dim), buffer `e_score_correction_bias` (E,),
  `update_bias(load, gamma)`
- `Experts(n_experts, dim, hidden_dim, activation="silu", *, bias=False, swiglu_limit=None,
  swiglu_alpha=1.702)`: fused `gate_up_proj` (E, 2 * hidden_dim, dim) and `down_proj`
  (E, dim, hidden_dim), with bias `gate_up_proj_bias` (E, 2 * hidden_dim) and `down_proj_bias`
  (E, dim); swiglu_limit: gpt-oss's clamped SwiGLU (`activations.clamped_swiglu`) instead;
  `forward(x (N, dim), indices, weights, scale_input=False) -> (N, dim)`
- `SparseMoE(dim, hidden_dim, n_experts, k=2, ..., gate_in_fp32=True, bias=False,
  swiglu_limit=None, swiglu_alpha=1.702, gate_on_input=False, n_shared_experts=0)`: `gate`,
  `experts`, `shared_experts` if n_shared_experts (Mixtral; Qwen 3 MoE with
  `gate_in_fp32=False`: gate values rounded to the input dtype; gpt-oss with order
  "topk_softmax", biases and the clamped SwiGLU; Llama 4 with order "topk_sigmoid",
  `gate_on_input` and one shared expert)
- `DeepSeekMoE(dim, hidden_dim, n_experts, k, *, n_shared_experts=1, ...)`: `gate`,
  `experts`, `shared_experts` (DeepSeek-V3)
- `expert_load(indices, n_experts) -> (E,)` tokens per expert
- `load_balancing_loss(router_logits, expert_indices, n_experts, *, first_choice_only=False)`

A sparse MoE layer (Shazeer et al. 2017) replaces the FFN by E expert FFNs and a router; each
token goes to k of them and the outputs are mixed with the gate weights. Mixtral (Jiang et al.
2024, arXiv:2401.04088): 8 SwiGLU experts, top-2, weights softmax(TopK(x W_g)). Router orders:
- "softmax_topk": softmax over all E logits, keep the k largest probabilities, and with
  `renormalize` divide them by their sum (Hugging Face's Mixtral router);
- "topk_softmax": keep the k largest logits, softmax over those (the Mixtral paper's formula);
- "topk_sigmoid": keep the k largest logits, gate each by its sigmoid (Llama 4, Meta 2025;
  transformers' Llama4Router, which does not renormalise: `renormalize=False`).
Softmax-then-top-k-then-renormalise equals top-k-then-softmax (gpt-oss's router, which adds a
bias to the logits, OpenAI 2025); without renormalisation
(Switch, Qwen-MoE with norm_topk_prob=False) the weights sum to less than one.

DeepSeekMoE (Dai et al. 2024, arXiv:2401.06066; DeepSeek-V3, arXiv:2412.19437): always-on
shared experts plus fine-grained routed experts. V3 gates with sigmoid affinities s = sigmoid(x W_g);
the experts are chosen on s + b, where b (`e_score_correction_bias`) is nudged after each step
towards balanced load (auxiliary-loss-free balancing, Wang et al. 2024, arXiv:2408.15664), but
the gate values use s alone. Group-limited routing: the E experts form n_group groups, a group
scores the sum of its two best s + b, only the topk_group best groups are eligible. The k gate
values are renormalised to sum to one (norm_topk_prob) and multiplied by routed_scaling_factor.
This follows transformers' DeepseekV3TopkRouter and DeepseekV3MoE.

gpt-oss (OpenAI 2025) adds biases to every expert projection and uses `clamped_swiglu`.

Llama 4 (Meta 2025, transformers' Llama4TextMoe) gates the *input* of each expert instead of
its output: y = shared(x) + sum_j E_j(g_j x), with g_j = sigmoid(logit_j) of the top-k
logits (`gate_on_input`, `scale_input`); since an expert is not linear, E(g x) != g E(x).

Expert weight layout = Hugging Face 5.x (MixtralExperts, DeepseekV3Experts): one 3-D
parameter `gate_up_proj` (E, 2 * hidden, dim) whose rows are [gate; up], and `down_proj`
(E, dim, hidden); loading is a copy. Older checkpoints with per-expert w1 (gate), w3 (up),
w2 (down) linears load as gate_up_proj[e] = cat(w1, w3), down_proj[e] = w2; gpt-oss's
(E, dim, 2 * hidden) with gate and up interleaved column by column loads transposed and
de-interleaved (`course_lib.models.hf`).

Dispatch: the N * k (token, expert) assignments are sorted by expert, each expert runs once
on its contiguous group of tokens (one matrix multiply, as a grouped GEMM would), and the
weighted outputs are scattered back with index_add_. No loop over tokens. Within a group
the tokens are in HF's order (by slot, then token), so float32 results match HF bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.kernels.activations import GatedMLP, clamped_swiglu, get_activation


class Routing(NamedTuple):
    """Router output: logits (N, E) float32, gate weights (N, k) float32, indices (N, k) int64."""

    logits: torch.Tensor
    weights: torch.Tensor
    indices: torch.Tensor


def _router_dtype(x: torch.Tensor) -> torch.dtype:
    """Routers run in float32 as in HF, or float64 for float64 inputs."""
    return torch.promote_types(x.dtype, torch.float32)


def top_k_routing(
    logits: torch.Tensor, k: int, *, order: str = "softmax_topk", renormalize: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gate weights and expert indices (N, k) from router logits (N, E), in float32 (float64
    for float64 logits)."""
    logits = logits.to(_router_dtype(logits))
    if order == "softmax_topk":
        probs = torch.softmax(logits, dim=-1)  # (N, E)
        weights, indices = torch.topk(probs, k, dim=-1)  # (N, k)
        if renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights, indices
    if order == "topk_softmax":
        top_logits, indices = torch.topk(logits, k, dim=-1)
        return torch.softmax(top_logits, dim=-1), indices
    if order == "topk_sigmoid":
        top_logits, indices = torch.topk(logits, k, dim=-1)
        weights = torch.sigmoid(top_logits)
        if renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights, indices
    raise ValueError(
        f"order must be 'softmax_topk', 'topk_softmax' or 'topk_sigmoid', got {order!r}"
    )


class TopKRouter(nn.Module):
    """Linear router (no bias) + top-k: x (..., dim) -> Routing over N = prod(...) tokens."""

    def __init__(
        self,
        dim: int,
        n_experts: int,
        k: int,
        *,
        order: str = "softmax_topk",
        renormalize: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.n_experts, self.k, self.order, self.renormalize = n_experts, k, order, renormalize
        self.weight = nn.Parameter(torch.randn(n_experts, dim) * dim**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_experts)) if bias else None

    def forward(self, x: torch.Tensor) -> Routing:
        logits = F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias)  # (N, E)
        weights, indices = top_k_routing(
            logits, self.k, order=self.order, renormalize=self.renormalize
        )
        return Routing(logits.to(_router_dtype(logits)), weights, indices)


class DeepSeekRouter(nn.Module):
    """DeepSeek-V3 sigmoid router with bias-corrected, group-limited top-k selection."""

    e_score_correction_bias: torch.Tensor

    def __init__(
        self,
        dim: int,
        n_experts: int,
        k: int,
        *,
        n_group: int = 1,
        topk_group: int = 1,
        norm_topk_prob: bool = True,
        routed_scaling_factor: float = 1.0,
    ) -> None:
        super().__init__()
        if n_experts % n_group:
            raise ValueError(f"n_experts={n_experts} is not a multiple of n_group={n_group}")
        self.n_experts, self.k = n_experts, k
        self.n_group, self.topk_group = n_group, topk_group
        self.norm_topk_prob, self.routed_scaling_factor = norm_topk_prob, routed_scaling_factor
        self.weight = nn.Parameter(torch.randn(n_experts, dim) * dim**-0.5)
        self.register_buffer("e_score_correction_bias", torch.zeros(n_experts))

    def forward(self, x: torch.Tensor) -> Routing:
        x = x.reshape(-1, x.shape[-1])
        dtype = _router_dtype(x)
        logits = F.linear(x.to(dtype), self.weight.to(dtype))  # (N, E), in float32 as HF
        scores = logits.sigmoid()  # affinities s
        choice = scores + self.e_score_correction_bias  # s + b: for selection only
        grouped = choice.view(-1, self.n_group, self.n_experts // self.n_group)  # (N, G, E/G)
        group_scores = grouped.topk(min(2, grouped.shape[-1]), dim=-1)[0].sum(dim=-1)  # (N, G)
        group_idx = torch.topk(group_scores, k=self.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)  # (N, G)
        expert_mask = group_mask.unsqueeze(-1).expand_as(grouped).reshape(-1, self.n_experts)
        choice = choice.masked_fill(~expert_mask.bool(), float("-inf"))
        indices = torch.topk(choice, k=self.k, dim=-1, sorted=False)[1]  # (N, k)
        weights = scores.gather(1, indices)  # gate values from s, without the bias
        if self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return Routing(logits, weights * self.routed_scaling_factor, indices)

    @torch.no_grad()
    def update_bias(self, load: torch.Tensor, gamma: float) -> None:
        """Auxiliary-loss-free balancing (DeepSeek-V3 §2.1.2): b_i -= gamma if expert i is
        overloaded (load above the mean load), b_i += gamma if underloaded. load: (E,) counts."""
        load = load.to(self.e_score_correction_bias)
        self.e_score_correction_bias += gamma * torch.sign(load.mean() - load)


class Experts(nn.Module):
    """E gated FFN experts in fused 3-D parameters (the Hugging Face 5.x layout)."""

    def __init__(
        self,
        n_experts: int,
        dim: int,
        hidden_dim: int,
        activation: str = "silu",
        *,
        bias: bool = False,
        swiglu_limit: float | None = None,
        swiglu_alpha: float = 1.702,
    ) -> None:
        super().__init__()
        self.n_experts, self.hidden_dim = n_experts, hidden_dim
        self.act = get_activation(activation)
        self.swiglu_limit, self.swiglu_alpha = swiglu_limit, swiglu_alpha
        self.gate_up_proj = nn.Parameter(torch.randn(n_experts, 2 * hidden_dim, dim) * dim**-0.5)
        self.down_proj = nn.Parameter(torch.randn(n_experts, dim, hidden_dim) * hidden_dim**-0.5)
        self.gate_up_proj_bias = self.down_proj_bias = None
        if bias:
            self.gate_up_proj_bias = nn.Parameter(torch.zeros(n_experts, 2 * hidden_dim))
            self.down_proj_bias = nn.Parameter(torch.zeros(n_experts, dim))

    def expert(self, e: int, h: torch.Tensor) -> torch.Tensor:
        """Expert e on tokens h (n, dim): down(act(gate h) * up h) -> (n, dim).

        Biases are added after each product is rounded to h's dtype, as gpt-oss does."""
        gate_up = F.linear(h, self.gate_up_proj[e])  # (n, 2 * hidden)
        if self.gate_up_proj_bias is not None:
            gate_up = gate_up + self.gate_up_proj_bias[e]
        gate, up = gate_up.chunk(2, dim=-1)  # (n, hidden) each
        if self.swiglu_limit is None:
            hidden = self.act(gate) * up
        else:
            hidden = clamped_swiglu(gate, up, self.swiglu_alpha, self.swiglu_limit)
        out = F.linear(hidden, self.down_proj[e])
        return out if self.down_proj_bias is None else out + self.down_proj_bias[e]

    def forward(
        self,
        x: torch.Tensor,
        indices: torch.Tensor,
        weights: torch.Tensor,
        scale_input: bool = False,
    ) -> torch.Tensor:
        """sum_j weights[t, j] * expert_{indices[t, j]}(x[t]): x (N, dim), indices/weights (N, k).

        scale_input: sum_j expert_{indices[t, j]}(weights[t, j] * x[t]) instead (Llama 4), the
        product rounded to x's dtype."""
        n_tokens = x.shape[0]
        flat = indices.T.reshape(-1)  # (k * N,) expert of each assignment, slot-major as in HF
        order = torch.argsort(flat, stable=True)  # assignments grouped by expert
        counts = torch.bincount(flat, minlength=self.n_experts).tolist()
        out = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            assignment = order[start : start + n]  # this expert's group
            token, slot = assignment % n_tokens, assignment // n_tokens
            gate = weights[token, slot, None]  # (n, 1)
            if scale_input:
                y = self.expert(e, (x[token] * gate).to(x.dtype))  # (n, dim)
            else:
                y = self.expert(e, x[token]) * gate  # (n, dim)
            out.index_add_(0, token, y.to(out.dtype))
            start += n
        return out


class SparseMoE(nn.Module):
    """Top-k sparse MoE of gated experts (Mixtral): x (B, T, dim) -> (B, T, dim)."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        n_experts: int,
        k: int = 2,
        *,
        order: str = "softmax_topk",
        renormalize: bool = True,
        activation: str = "silu",
        gate_in_fp32: bool = True,
        bias: bool = False,
        swiglu_limit: float | None = None,
        swiglu_alpha: float = 1.702,
        gate_on_input: bool = False,
        n_shared_experts: int = 0,
    ) -> None:
        super().__init__()
        self.gate = TopKRouter(dim, n_experts, k, order=order, renormalize=renormalize, bias=bias)
        self.experts = Experts(
            n_experts,
            dim,
            hidden_dim,
            activation,
            bias=bias,
            swiglu_limit=swiglu_limit,
            swiglu_alpha=swiglu_alpha,
        )
        self.gate_in_fp32, self.gate_on_input = gate_in_fp32, gate_on_input
        # always-on experts, one gated MLP of width n_shared * hidden_dim (Llama 4: one)
        self.shared_experts = (
            GatedMLP(dim, hidden_dim * n_shared_experts, activation) if n_shared_experts else None
        )

    def forward(
        self, x: torch.Tensor, return_routing: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Routing]:
        routing = self.gate(x)
        # Mixtral mixes with float32 gate values; Qwen 3 MoE first rounds them to x's dtype
        weights = routing.weights if self.gate_in_fp32 else routing.weights.to(x.dtype)
        y = self.experts(
            x.reshape(-1, x.shape[-1]), routing.indices, weights, scale_input=self.gate_on_input
        )
        y = y.reshape(x.shape)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return (y, routing) if return_routing else y


class DeepSeekMoE(nn.Module):
    """Shared experts + sigmoid-routed fine-grained experts (DeepSeek-V3): (B, T, dim) -> same."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        n_experts: int,
        k: int,
        *,
        n_shared_experts: int = 1,
        n_group: int = 1,
        topk_group: int = 1,
        norm_topk_prob: bool = True,
        routed_scaling_factor: float = 1.0,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        self.gate = DeepSeekRouter(
            dim,
            n_experts,
            k,
            n_group=n_group,
            topk_group=topk_group,
            norm_topk_prob=norm_topk_prob,
            routed_scaling_factor=routed_scaling_factor,
        )
        self.experts = Experts(n_experts, dim, hidden_dim, activation)
        # the shared experts are one gated MLP of width n_shared * hidden_dim, as in HF
        self.shared_experts = (
            GatedMLP(dim, hidden_dim * n_shared_experts, activation) if n_shared_experts else None
        )

    def forward(
        self, x: torch.Tensor, return_routing: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Routing]:
        routing = self.gate(x)
        y = self.experts(x.reshape(-1, x.shape[-1]), routing.indices, routing.weights)
        y = y.reshape(x.shape)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return (y, routing) if return_routing else y

    def update_bias(self, load: torch.Tensor, gamma: float = 1e-3) -> None:
        """See `DeepSeekRouter.update_bias`; load from `expert_load(routing.indices, E)`."""
        self.gate.update_bias(load, gamma)


def expert_load(indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Number of (token, slot) assignments per expert: indices (..., k) -> (E,) int64."""
    return torch.bincount(indices.reshape(-1), minlength=n_experts)


def load_balancing_loss(
    router_logits: torch.Tensor,
    expert_indices: torch.Tensor,
    n_experts: int,
    *,
    first_choice_only: bool = False,
) -> torch.Tensor:
    """Switch Transformer auxiliary loss N * sum_i f_i * P_i (Fedus et al. 2021, eqs. 4-6).

    router_logits (..., E); expert_indices (..., k). P_i is the mean router probability of
    expert i, f_i the fraction of the k assignments per token that went to expert i, so a
    perfectly uniform router scores 1 for any k. Hugging Face's `load_balancing_loss_func`
    counts f_i per token rather than per assignment and returns k times this value.
    `first_choice_only` counts only each token's first expert, as GShard (Lepikhin et al.
    2020, Algorithm 1) and GLaM (Du et al. 2021), whose l_aux = (1/E) sum_e (c_e/S) m_e is this
    loss divided by E^2.
    """
    probs = torch.softmax(router_logits.reshape(-1, n_experts).float(), dim=-1)  # (N, E)
    mean_prob = probs.mean(dim=0)  # P_i
    idx = expert_indices.reshape(probs.shape[0], -1)
    if first_choice_only:
        idx = idx[:, :1]
    fraction = expert_load(idx, n_experts).to(probs.dtype) / idx.numel()  # f_i
    return n_experts * (fraction * mean_prob).sum()
