"""Diagrams of the decoder block's mechanisms, computed from the presets and kernels.

API
- `query_to_kv_head(n_heads, n_kv_heads) -> list[int]`: the key/value head each query head
  reads, found by running `kernels.repeat_kv` on head indices
- `plot_head_sharing(configs) -> Figure`: MHA / GQA / MQA, one panel per ModelConfig
- `block_boxes(cfg) -> dict[slot, (kind, detail)]`: what each part of cfg's decoder is
- `plot_block_diagrams(configs) -> Figure`: the models side by side, differences highlighted
- `paged_block_tables(lengths, block_size) -> list[list[int]]`: physical blocks of each
  sequence, allocated on demand as the sequences decode in turn (PagedAttention)
- `plot_paged_kv(requests, block_size=16, spare_blocks=3) -> Figure`
- `flash_tile_schedule(t, block_q, block_k, causal=True) -> [(q tile, k tile), ...]`: the
  tiles the FlashAttention-2 forward visits, in order, with the kernel's `key_range`
- `plot_flash_tiles(t=64, block=16, seed=0) -> Figure`
- `rope_rotated(x, positions, base=10000.0) -> (T, d)`: x (d,) rotated to each position by
  `kernels.apply_rope` (interleaved pairs 2i, 2i + 1, as in the RoPE paper)
- `plot_rope_rotation(head_dim=8, base=10000.0, pairs=(0, 1), n_positions=6) -> Figure`
- `moe_routing_example(n_tokens=12, n_experts=4, k=2, dim=16, seed=0) -> Routing`: a seeded
  `TopKRouter` on states that share a direction
- `plot_moe_capacity(n_tokens=12, n_experts=4, panels=((1, 1.0), (2, 1.0), (2, 1.25)))`:
  that routing with C slots per expert (`kernels.moe_capacity`), the overflow dropped
- `parallel_layout(cfg, dp, tp, pp) -> list[DeviceShard]`: which layers, which tensor shard
  and how many parameters each device of 3D parallelism holds (Megatron-LM rank order)
- `plot_parallel_grid(cfg, dp, tp, pp, bytes_per_param=16.0) -> Figure`

GPT-2: Radford et al. 2019; Llama: Touvron et al. 2023. FlashAttention: Dao et al. 2022 and Dao 2023 (arXiv:2205.14135, 2307.08691). Paged KV cache: Kwon et al. 2023 (arXiv:2309.06180). RoPE: Su et al. 2021 (arXiv:2104.09864). Expert capacity: Fedus et al. 2021 (Switch,
arXiv:2101.03961), Lepikhin et al. 2020 (GShard, arXiv:2006.16668). 3D parallelism: Shoeybi et al.
2019 (Megatron-LM, arXiv:1909.08053), Narayanan et al. 2021 (arXiv:2104.04473). Multi-query attention: Shazeer 2019 (arXiv:1911.02150); grouped-query attention: Ainslie et
al. 2023 (arXiv:2305.13245).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from course_lib.hardware.memory import ADAM_MIXED_PRECISION
from course_lib.hardware.serving import Request
from course_lib.kernels.attention import causal_mask, repeat_kv
from course_lib.kernels.flash import key_range, online_softmax_step
from course_lib.kernels.moe import Routing, TopKRouter
from course_lib.kernels.moe_capacity import (
    capacity_positions,
    drop_over_capacity,
    expert_capacity,
)
from course_lib.kernels.rope import apply_rope, rope_cos_sin, rope_frequencies
from course_lib.models.analytics import count_parameters, kv_cache_bytes, parameter_breakdown
from course_lib.models.config import ModelConfig


def query_to_kv_head(n_heads: int, n_kv_heads: int) -> list[int]:
    """For each of the n_heads query heads, the index of the key/value head it attends with.

    Read off the attention kernel itself: `repeat_kv` expands a (1, H_kv, 1, 1) tensor holding
    each KV head's index to the (1, H, 1, 1) tensor the query heads are multiplied with.
    """
    heads = torch.arange(n_kv_heads, dtype=torch.float64).view(1, n_kv_heads, 1, 1)
    return [int(h) for h in repeat_kv(heads, n_heads // n_kv_heads).flatten()]


def _attention_kind(cfg: ModelConfig) -> str:
    if cfg.n_kv_heads == cfg.n_heads:
        return "MHA"
    return "MQA" if cfg.n_kv_heads == 1 else "GQA"


def plot_head_sharing(configs: Sequence[ModelConfig]) -> Figure:
    """One panel per config: query heads (top row) joined to the key/value head they read.

    Boxes carry gids "q{h}" and "kv{j}", each joining line "edge q{h}-kv{j}"; boxes of one
    group share a colour. The title gives the 16-bit KV cache per token (`kv_cache_bytes`).
    """
    fig, axes = plt.subplots(len(configs), 1, figsize=(10, 1.9 * len(configs)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, cfg in zip(axes[:, 0], configs, strict=True):
        h, h_kv = cfg.n_heads, cfg.n_kv_heads
        reads = query_to_kv_head(h, h_kv)
        width = 1.0 / h  # each query head a slot of the same width, in axes units
        for j in range(h_kv):  # KV heads sit under the middle of their group
            members = [i for i, kv in enumerate(reads) if kv == j]
            x_kv = (min(members) + max(members) + 1) / 2 * width
            box = Rectangle((x_kv - 0.4 * width, 0.0), 0.8 * width, 0.25, color=cmap(j % 10))
            ax.add_patch(box).set_gid(f"kv{j}")
            for i in members:
                (edge,) = ax.plot([x_kv, (i + 0.5) * width], [0.25, 0.75], color=cmap(j % 10))
                edge.set(lw=0.8, gid=f"edge q{i}-kv{j}")
        for i, j in enumerate(reads):
            box = Rectangle(((i + 0.1) * width, 0.75), 0.8 * width, 0.25, color=cmap(j % 10))
            ax.add_patch(box).set(alpha=0.55, gid=f"q{i}")
        ax.set(xlim=(0, 1), ylim=(-0.05, 1.05), xticks=[], yticks=[0.125, 0.875])
        ax.set_yticklabels(["K/V heads", "query heads"])
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        ax.set_title(
            f"{cfg.name}: {_attention_kind(cfg)}, {h} query heads, {h_kv} K/V "
            f"head{'s' if h_kv > 1 else ''} ({h // h_kv} query head{'s' if h > h_kv else ''} "
            f"per K/V head); KV cache {kv_cache_bytes(cfg, seq_len=1) / 1024:.0f} KiB per token",
            fontsize=10,
            loc="left",
        )
    fig.tight_layout()
    return fig


def rope_rotated(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """x (d,) placed at each of positions (T,) and rotated by the course's RoPE kernel: (T, d)."""
    d, t = x.shape[-1], positions.shape[-1]
    inv_freq = rope_frequencies(d, base, dtype=x.dtype)  # theta_i, (d/2,)
    cos, sin = rope_cos_sin(positions, inv_freq)  # (T, d/2)
    return apply_rope(x.expand(1, 1, t, d), cos, sin, layout="interleaved")[0, 0]


def plot_rope_rotation(
    head_dim: int = 8, base: float = 10000.0, pairs: Sequence[int] = (0, 1), n_positions: int = 6
) -> Figure:
    """RoPE in 2-D: one panel per channel pair of a query, and the logits q_m . k_n.

    Pair panel i: the pair (q_2i, q_2i+1) at positions m = 0 .. n_positions - 1, one arrow
    each (a quiver, gid "pair {i}"), turned by m * theta_i. Last panel (an image, gid
    "logits"): q_m . k_n over all channels for m, n < 16, constant along each diagonal.
    """
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, head_dim, generator=g, dtype=torch.float64)
    theta = rope_frequencies(head_dim, base, dtype=torch.float64)
    fig, axes = plt.subplots(1, len(pairs) + 1, figsize=(3.6 * (len(pairs) + 1), 3.6))
    m = torch.arange(n_positions)
    q_m = rope_rotated(q, m, base)  # (T, d)
    colours = plt.get_cmap("viridis")(torch.linspace(0, 0.9, n_positions).numpy())
    for ax, i in zip(axes, pairs, strict=False):
        x, y = q_m[:, 2 * i], q_m[:, 2 * i + 1]
        r = float(x.hypot(y).max())
        ax.add_patch(plt.Circle((0, 0), r, fill=False, ls=":", color="0.6"))
        zeros = torch.zeros(n_positions)
        ax.quiver(zeros, zeros, x, y, color=colours, angles="xy", scale_units="xy", scale=1,
                  width=0.012, gid=f"pair {i}")  # fmt: skip
        crowded = theta[i] < 0.3  # arrows closer than ~17 degrees: label the first and last
        for p in range(n_positions) if not crowded else (0, n_positions - 1):
            ax.annotate(f"m={p}", (1.12 * x[p], 1.12 * y[p]), ha="center", va="center",
                        fontsize=8, color=colours[p])  # fmt: skip
        ax.set(xlim=(-1.35 * r, 1.35 * r), ylim=(-1.35 * r, 1.35 * r), aspect="equal",
               xticks=[], yticks=[], xlabel=f"q[{2 * i}]", ylabel=f"q[{2 * i + 1}]")  # fmt: skip
        ax.set_title(f"pair {i}: θ_{i} = {theta[i]:.3g} rad per position", fontsize=10)
    grid = torch.arange(16)
    logits = rope_rotated(q, grid, base) @ rope_rotated(k, grid, base).T  # (16, 16): q_m . k_n
    ax = axes[-1]
    ax.imshow(logits.numpy(), cmap="RdBu_r", gid="logits")
    ax.set(xlabel="key position n", ylabel="query position m")
    ax.set_title(f"q_m · k_n (d = {head_dim}): same along\neach diagonal m − n", fontsize=10)
    fig.tight_layout()
    return fig


SLOTS = ("embedding", "positions", "norm 1", "attention", "add 1", "norm 2", "mlp", "add 2",
         "final norm", "lm head")  # fmt: skip
_ACTIVATION = {"gelu_new": "GELU (tanh)", "gelu_tanh": "GELU (tanh)", "gelu": "GELU",
               "silu": "SiLU", "relu": "ReLU"}  # fmt: skip


def _norm(cfg: ModelConfig) -> str:
    if cfg.norm == "rms":
        return "RMSNorm (gain)"
    return "LayerNorm (gain + bias)" if cfg.norm_bias else "LayerNorm (gain, no bias)"


def block_boxes(cfg: ModelConfig) -> dict[str, tuple[str, str]]:
    """(kind, detail) of each slot of cfg's pre-norm decoder, bottom to top; kinds are compared."""
    d, v = cfg.d_model, cfg.vocab_size
    attn_kind = _attention_kind(cfg) + " attention"
    if cfg.position == "rope":
        attn_kind += ", RoPE on q, k"
    biases = [n for n, on in (("qkv", cfg.qkv_bias), ("out", cfg.out_bias)) if on]
    attn_kind += f"\n{' + '.join(biases)} biases" if biases else "\nno biases"
    act = _ACTIVATION[cfg.activation]
    if cfg.gated_mlp:
        glu = "SwiGLU" if cfg.activation == "silu" else f"{act} GLU"
        mlp = (f"{glu} MLP, 3 matrices", f"{d} → 2 × {cfg.d_ff} → {d}")
    else:
        mlp = (f"{act} MLP, 2 matrices", f"{d} → {cfg.d_ff} → {d}")
    mlp = (mlp[0] + (", biases" if cfg.mlp_bias else ", no biases"), mlp[1])
    learned = cfg.position == "learned"
    return {
        "embedding": ("token embedding", f"{v} × {d}"),
        "positions": (
            ("+ learned position embedding", f"{cfg.max_seq_len} × {d}")
            if learned
            else ("no position vector (RoPE)", "")
        ),
        "norm 1": (_norm(cfg), ""),
        "attention": (
            attn_kind,
            f"{cfg.n_heads} q heads, {cfg.n_kv_heads} K/V, d_head {cfg.head_dim}",
        ),
        "add 1": ("+", ""),
        "norm 2": (_norm(cfg), ""),
        "mlp": mlp,
        "add 2": ("+", ""),
        "final norm": (_norm(cfg), ""),
        "lm head": (
            "LM head tied to the embedding" if cfg.tie_embeddings else "LM head, own matrix",
            f"{d} × {v}",
        ),
    }


def plot_block_diagrams(configs: Sequence[ModelConfig]) -> Figure:
    """The decoders of configs side by side, input at the bottom.

    Each slot is a box (gid "{name}:{slot}", its text "{name}:{slot}:text": kind and detail,
    a circled "+" for the residual additions); a box whose kind differs between the configs
    is highlighted (facecolor "moccasin"). A bracket marks
    the repeated block (× n_layers); lines on the left are the residual connections.
    """
    boxes = [block_boxes(cfg) for cfg in configs]
    differs = {s for s in SLOTS if len({b[s][0] for b in boxes}) > 1}
    fig, axes = plt.subplots(1, len(configs), figsize=(4.6 * len(configs), 7.5))
    for ax, cfg, box in zip(axes, configs, boxes, strict=True):
        y = {slot: i for i, slot in enumerate(SLOTS)}  # slot i at height i
        for slot, (kind, detail) in box.items():
            if slot.startswith("add"):
                ax.text(0.5, y[slot], "+", ha="center", va="center", fontsize=11,
                        bbox=dict(boxstyle="circle", fc="white"), gid=f"{cfg.name}:{slot}")  # fmt: skip
                continue
            colour = "moccasin" if slot in differs else "whitesmoke"
            patch = FancyBboxPatch((0.18, y[slot] - 0.33), 0.64, 0.66, boxstyle="round,pad=0.02",
                                   facecolor=colour, edgecolor="0.4", gid=f"{cfg.name}:{slot}")  # fmt: skip
            ax.add_patch(patch)
            text = kind + (f"\n{detail}" if detail else "")
            ax.text(0.5, y[slot], text, ha="center", va="center", fontsize=7.5,
                    gid=f"{cfg.name}:{slot}:text")  # fmt: skip
        for lower, upper in zip(SLOTS, SLOTS[1:], strict=False):  # the main path, upwards
            y0 = y[lower] + (0.15 if lower.startswith("add") else 0.35)
            y1 = y[upper] - (0.15 if upper.startswith("add") else 0.35)
            ax.annotate("", (0.5, y1), (0.5, y0), arrowprops=dict(arrowstyle="->", color="0.3"))
        for norm, add in (("norm 1", "add 1"), ("norm 2", "add 2")):  # residual: around the branch
            y0 = y[norm] - 0.5
            ax.plot([0.5, 0.08, 0.08], [y0, y0, y[add]], color="tab:blue", lw=1.2)
            ax.annotate("", (0.45, y[add]), (0.08, y[add]),
                        arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2))  # fmt: skip
        top, bottom = y["add 2"] + 0.4, y["norm 1"] - 0.6
        ax.plot([0.9, 0.93, 0.93, 0.9], [bottom, bottom, top, top], color="0.3", lw=1)
        ax.text(0.95, (top + bottom) / 2, f"× {cfg.n_layers}", va="center", fontsize=10,
                gid=f"{cfg.name}:layers")  # fmt: skip
        ax.set(xlim=(0, 1.08), ylim=(-0.6, len(SLOTS) - 0.4), xticks=[], yticks=[])
        ax.set_title(f"{cfg.name} (d = {cfg.d_model})", fontsize=11)
        for side in ax.spines.values():
            side.set_visible(False)
    fig.tight_layout()
    return fig


def paged_block_tables(lengths: Sequence[int], block_size: int) -> list[list[int]]:
    """Block table of each sequence: the physical block holding its logical block j.

    The sequences grow one token per step in turn, as in a decode batch; a sequence whose
    last block is full takes the lowest free physical block, so tables interleave.
    """
    tables: list[list[int]] = [[] for _ in lengths]
    next_free = 0
    for t in range(max(lengths)):
        for table, length in zip(tables, lengths, strict=True):
            if t < length and t % block_size == 0:  # token t starts a new logical block
                table.append(next_free)
                next_free += 1
    return tables


def plot_paged_kv(
    requests: Sequence[Request], block_size: int = 16, spare_blocks: int = 3
) -> Figure:
    """Logical blocks of each request (left) mapped through its block table to physical blocks.

    Logical block j of sequence i: a box with gid "s{i} b{j}" labelled with its physical
    block; the joining line "map s{i} b{j} -> p{k}"; physical block k (gid "p{k}") is filled
    in proportion to the tokens it holds. `spare_blocks` free blocks are drawn after the used.
    """
    lengths = [r.prompt_len + r.output_len for r in requests]
    tables = paged_block_tables(lengths, block_size)
    n_phys = sum(map(len, tables)) + spare_blocks
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 0.42 * n_phys + 1.2))
    owner = {k: (i, j) for i, table in enumerate(tables) for j, k in enumerate(table)}
    for k in range(n_phys):  # physical blocks: a column on the right, p0 at the top
        y = n_phys - 1 - k
        ax.add_patch(Rectangle((6.0, y - 0.4), 2.0, 0.8, fill=False, ec="0.4", gid=f"p{k}"))
        label = "free"
        if k in owner:
            i, j = owner[k]
            used = min(block_size, lengths[i] - j * block_size)
            ax.add_patch(Rectangle((6.0, y - 0.4), 2.0 * used / block_size, 0.8,
                                   color=cmap(i % 10), alpha=0.6, gid=f"p{k} fill"))  # fmt: skip
            label = f"seq {i}, {used}/{block_size} tokens"
        ax.text(5.85, y, f"p{k}", ha="right", va="center", fontsize=8)
        ax.text(8.15, y, label, va="center", fontsize=8)
    row_height = (n_phys - 1) / max(len(tables), 1)
    for i, table in enumerate(tables):  # logical blocks: one row per sequence on the left
        y = n_phys - 1 - (i + 0.5) * row_height
        ax.text(-0.15, y, f"seq {i}\n{lengths[i]} tokens", ha="right", va="center", fontsize=8)
        for j, k in enumerate(table):
            ax.add_patch(Rectangle((0.9 * j, y - 0.4), 0.8, 0.8, color=cmap(i % 10), alpha=0.6,
                                   gid=f"s{i} b{j}"))  # fmt: skip
            ax.text(0.9 * j + 0.4, y, f"p{k}", ha="center", va="center", fontsize=8)
            (line,) = ax.plot([0.9 * j + 0.8, 6.0], [y, n_phys - 1 - k], color=cmap(i % 10))
            line.set(lw=0.7, alpha=0.7, gid=f"map s{i} b{j} -> p{k}")
    ax.set(xlim=(-1.4, 10.5), ylim=(-0.7, n_phys - 0.3), xticks=[], yticks=[])
    ax.set_title(
        f"Block tables: logical blocks of {block_size} tokens → physical KV blocks", fontsize=10
    )
    ax.text(1.5, n_phys - 0.45, "logical blocks (block table)", ha="center", fontsize=9)
    ax.text(7.0, n_phys - 0.45, "physical blocks", ha="center", fontsize=9)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    return fig


def flash_tile_schedule(
    t: int, block_q: int, block_k: int, causal: bool = True
) -> list[tuple[int, int]]:
    """(query tile, key tile) pairs in the order `flash._forward_tiles` computes them (T_q = T_k).

    Outer loop over query tiles, inner loop over the key tiles `key_range` lets them see.
    """
    steps = []
    for qs in range(0, t, block_q):
        lo, hi = key_range(qs, min(qs + block_q, t), t, 0, causal, None)
        steps += [
            (qs // block_q, ks // block_k) for ks in range((lo // block_k) * block_k, hi, block_k)
        ]
    return steps


def plot_flash_tiles(t: int = 64, block: int = 16, d: int = 16, seed: int = 0) -> Figure:
    """Left: the score matrix in tiles, each computed tile numbered by its step (gid
    "tile {i},{j}"), skipped tiles left blank. Right: for the last query row, the running
    max m (gid "running max") and normaliser ℓ (gid "running sum") after each key tile of
    `online_softmax_step`, against the full row's sum of exp(s - max s)."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, t, d, generator=g, dtype=torch.float64)
    v = torch.zeros(t, 1, dtype=torch.float64)
    steps = flash_tile_schedule(t, block, block)
    n_tiles = -(-t // block)
    fig, (ax, ax_row) = plt.subplots(1, 2, figsize=(10, 4.2))
    for n, (i, j) in enumerate(steps):
        last = i == n_tiles - 1
        ax.add_patch(Rectangle((j * block, i * block), block, block, ec="0.3",
                               fc="tab:orange" if last else "tab:blue", alpha=0.5,
                               gid=f"tile {i},{j}"))  # fmt: skip
        ax.text((j + 0.5) * block, (i + 0.5) * block, str(n + 1), ha="center", va="center")
    ax.set(xlim=(0, t), ylim=(t, 0), aspect="equal", xlabel="key position", ylabel="query position",
           xticks=range(0, t + 1, block), yticks=range(0, t + 1, block))  # fmt: skip
    ax.set_title(f"Causal FlashAttention, T = {t}, {block} × {block} tiles:\n"
                 f"{len(steps)} of {n_tiles**2} tiles computed", fontsize=10)  # fmt: skip
    s = (q[-1:] @ k.T) / d**0.5  # (1, T): the scores of the last query row
    s = s.masked_fill(~causal_mask(t, t)[-1:], float("-inf"))
    m = torch.full((1,), float("-inf"), dtype=torch.float64)
    ell, acc = torch.zeros(1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    maxima, sums = [], []
    for _, j in [(i, j) for i, j in steps if i == n_tiles - 1]:
        tile = slice(j * block, (j + 1) * block)
        m, ell, acc = online_softmax_step(m, ell, acc, s[:, tile], v[tile])
        maxima.append(float(m))
        sums.append(float(ell))
    x = range(1, len(maxima) + 1)
    ax_row.plot(x, maxima, "o-", color="tab:red", gid="running max", label="running max m")
    ax_row.plot(x, sums, "s-", color="tab:orange", gid="running sum",
                label="running sum ℓ = Σ exp(s − m), rescaled when m grows")  # fmt: skip
    full = float(torch.exp(s - s.max()).sum())
    ax_row.axhline(full, ls=":", color="0.3", label="Σ exp(s − max s) of the full row")
    ax_row.set(xticks=list(x), xlabel="key tile of the last query tile (step)",
               title=f"Online softmax of query row {t - 1}")  # fmt: skip
    ax_row.legend(fontsize=8)
    fig.tight_layout()
    return fig


def moe_routing_example(
    n_tokens: int = 12, n_experts: int = 4, k: int = 2, dim: int = 16, seed: int = 0
) -> Routing:
    """The routing of a seeded `TopKRouter` on n_tokens random hidden states (N, dim).

    The states share a common direction, as a real layer's do, so some experts are
    preferred and overflow their capacity.
    """
    g = torch.Generator().manual_seed(seed)
    router = TopKRouter(dim, n_experts, k)
    with torch.no_grad():
        router.weight.copy_(torch.randn(n_experts, dim, generator=g) * dim**-0.5)
        x = torch.randn(dim, generator=g) + torch.randn(n_tokens, dim, generator=g)  # (N, dim)
        return router(x)


_EXPERT_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
                   "tab:pink", "tab:olive", "tab:cyan", "tab:gray")  # no red: red is dropped  # fmt: skip


def plot_moe_capacity(
    n_tokens: int = 12,
    n_experts: int = 4,
    panels: Sequence[tuple[int, float]] = ((1, 1.0), (2, 1.0), (2, 1.25)),
    seed: int = 0,
) -> Figure:
    """Tokens (left) routed top-k to experts (right) with C slots each; one panel per (k,
    capacity factor), all from the same router (`moe_routing_example`, its top-k changed).

    Drops from `moe_capacity.drop_over_capacity`. Token t is a box (gid "t{t}", red if every
    choice was dropped); expert e's slots "e{e} slot{s}"; a kept assignment is the line
    "kept t{t} choice {j} -> e{e} slot {s}" (first choices solid, later ones dashed), a
    dropped one "dropped t{t} choice {j} -> e{e}", ending in a red cross right of the
    expert's full buffer. Each panel's title gives C and the counts.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 5), squeeze=False)
    height = max(0.5 * n_tokens, 1.3 * n_experts)
    y_tok = [height - (t + 0.5) * height / n_tokens for t in range(n_tokens)]
    y_exp = [height - (e + 0.5) * height / n_experts for e in range(n_experts)]
    x0, slot_w = 2.6, 0.5  # the first slot's left edge, the slot pitch
    colour = [_EXPERT_COLOURS[e % len(_EXPERT_COLOURS)] for e in range(n_experts)]
    for ax, (k, factor) in zip(axes[0], panels, strict=True):
        idx = moe_routing_example(n_tokens, n_experts, k, seed=seed).indices  # (N, k)
        pos = capacity_positions(idx, n_experts)  # (N, k): place in the expert's queue
        c = expert_capacity(n_tokens, n_experts, k, factor)
        kept = drop_over_capacity(idx, n_experts, c)  # (N, k)
        for e in range(n_experts):
            ax.text(x0, y_exp[e] + 0.42, f"expert {e}", va="bottom", fontsize=8, color=colour[e])
            for s in range(c):
                ax.add_patch(Rectangle((x0 + s * slot_w, y_exp[e] - 0.3), 0.9 * slot_w, 0.6,
                                       fill=False, ec="0.5", gid=f"e{e} slot{s}"))  # fmt: skip
        n_over = [0] * n_experts
        for j in range(k):  # first choices first, as they are queued
            for t in range(n_tokens):
                e, s = int(idx[t, j]), int(pos[t, j])
                if kept[t, j]:
                    xs = x0 + s * slot_w
                    ax.add_patch(Rectangle((xs, y_exp[e] - 0.3), 0.9 * slot_w, 0.6,
                                           color=colour[e], alpha=0.75 if j == 0 else 0.35))  # fmt: skip
                    ax.text(xs + 0.45 * slot_w, y_exp[e], str(t), ha="center", va="center",
                            fontsize=7)  # fmt: skip
                    (line,) = ax.plot([0.8, xs], [y_tok[t], y_exp[e]], color=colour[e],
                                      lw=1.0, ls="-" if j == 0 else "--")  # fmt: skip
                    line.set_gid(f"kept t{t} choice {j} -> e{e} slot {s}")
                else:
                    xd = x0 + c * slot_w + 0.3 + 0.35 * n_over[e]
                    n_over[e] += 1
                    (line,) = ax.plot([0.8, xd], [y_tok[t], y_exp[e]], color="tab:red", lw=0.9,
                                      ls=":", marker="x", markevery=[1], ms=7)  # fmt: skip
                    line.set_gid(f"dropped t{t} choice {j} -> e{e}")
        for t in range(n_tokens):
            lost = not bool(kept[t].any())
            ax.add_patch(Rectangle((0, y_tok[t] - 0.2), 0.8, 0.4, gid=f"t{t}",
                                   fc="mistyrose" if lost else "whitesmoke",
                                   ec="tab:red" if lost else "0.4"))  # fmt: skip
            ax.text(0.4, y_tok[t], f"token {t}", ha="center", va="center", fontsize=7)
        n_drop, n_lost = int((~kept).sum()), int((~kept.any(1)).sum())
        ax.set(xlim=(-0.1, x0 + max(c, 4) * slot_w + 0.35 * (max(n_over) + 2)),
               ylim=(0, height + 0.3), xticks=[], yticks=[])  # fmt: skip
        ax.set_title(
            f"top-{k}, capacity factor {factor:g}: C = ⌈{factor:g}·{n_tokens}·{k}/{n_experts}⌉"
            f" = {c}\n{n_drop} of {n_tokens * k} assignments dropped, "
            f"{n_lost} token{'s' if n_lost != 1 else ''} skip{'s' if n_lost == 1 else ''} "
            "the experts",
            fontsize=9,
        )
        for side in ax.spines.values():
            side.set_visible(False)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class DeviceShard:
    """What one device of a DP x TP x PP layout holds (Megatron-LM order: TP ranks vary
    fastest, then data-parallel replicas, then pipeline stages)."""

    rank: int
    dp: int  # data-parallel replica
    pp: int  # pipeline stage
    tp: int  # tensor-parallel rank: this device holds shard tp of every matrix
    layers: range  # the decoder layers of its stage
    embedding: bool  # 1/TP of the token (and learned position) embedding: the first stage
    head: bool  # 1/TP of the final norm and LM head (a copy of the tied embedding): the last
    params: float  # parameters held: 1/TP of those of its layers, embedding and head


def parallel_layout(cfg: ModelConfig, dp: int, tp: int, pp: int) -> list[DeviceShard]:
    """The dp * tp * pp devices of 3D parallelism (Shoeybi et al. 2019; Narayanan et al. 2021).

    Each stage gets n_layers / pp consecutive layers (the first stages one more if it does not
    divide); every tensor-parallel rank holds 1/tp of each of its stage's parameters (norm
    gains, a 1e-4 fraction, are counted as cut too, though Megatron copies them). With tied
    embeddings and pp > 1 the last stage keeps its own copy of the embedding for the LM head,
    as Megatron-LM does. Dense models only: every layer has the same parameters.
    """
    n = count_parameters(cfg)
    per_layer = count_parameters(cfg.replace(n_layers=2)) - count_parameters(
        cfg.replace(n_layers=1)
    )
    b = parameter_breakdown(cfg)
    first = b["embedding"] + (b["position"] if cfg.position == "learned" else 0)
    head = n - cfg.n_layers * per_layer - first  # final norm (+ untied LM head)
    if cfg.n_experts or head < 0:
        raise ValueError(f"{cfg.name}: parallel_layout needs identical dense layers")
    if cfg.tie_embeddings and pp > 1:
        head += b["embedding"]  # the last stage's copy for the LM head
    base, extra = divmod(cfg.n_layers, pp)
    starts = [s * base + min(s, extra) for s in range(pp + 1)]
    devices = []
    for stage in range(pp):
        layers = range(starts[stage], starts[stage + 1])
        params = len(layers) * per_layer + first * (stage == 0) + head * (stage == pp - 1)
        for replica in range(dp):
            for t in range(tp):
                rank = t + tp * (replica + dp * stage)
                devices.append(DeviceShard(rank, replica, stage, t, layers, stage == 0,
                                           stage == pp - 1, params / tp))  # fmt: skip
    return sorted(devices, key=lambda d: d.rank)


def _layer_span(layers: range) -> str:
    return f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}–{layers[-1]}"


def plot_parallel_grid(
    cfg: ModelConfig,
    dp: int,
    tp: int,
    pp: int,
    bytes_per_param: float = float(sum(ADAM_MIXED_PRECISION.values())),
) -> Figure:
    """Every device of the layout in one grid: pipeline stages as rows, and one block of tp
    columns (the tensor ranks) per data-parallel replica, replicas side by side.

    The image (gid "devices", array (pp, dp * tp), column d * tp + t) holds each device's
    training state in GB, params x bytes_per_param (16 bytes: Adam in mixed precision); the
    y labels give each stage's layers. With at most 32 devices per replica each cell also
    reads its rank, layers, "+ emb"/"+ head" and GB (text gid "gpu {r}: dp {d}, stage {p},
    tp {t}").
    """
    devices = parallel_layout(cfg, dp, tp, pp)
    gb = torch.zeros(pp, dp * tp, dtype=torch.float64)
    for d in devices:
        gb[d.pp, d.dp * tp + d.tp] = d.params * bytes_per_param / 1e9
    labelled = tp * pp <= 32
    width = min(1.3 * tp, 4.0) * dp if labelled else 0.16 * dp * tp
    fig, ax = plt.subplots(figsize=(width + 3.2, min(0.75 * pp, 7.0) + 1.4))
    image = ax.imshow(gb.numpy(), cmap="YlOrRd", extent=(0, dp * tp, pp, 0), aspect="auto",
                      vmin=float(gb.min()), vmax=float(gb.max()) * 1.001, gid="devices")  # fmt: skip
    thin = 1.0 if labelled else 0.3
    ax.hlines(range(1, pp), 0, dp * tp, color="white", lw=thin)
    ax.vlines([c for c in range(1, dp * tp) if c % tp], 0, pp, color="white", lw=thin)
    ax.vlines(range(tp, dp * tp, tp), 0, pp, color="black", lw=1.5)  # replica boundaries
    for r in range(dp):
        ax.text((r + 0.5) * tp, 1.005, f"replica {r}", ha="center", va="bottom", fontsize=8,
                transform=ax.get_xaxis_transform())  # fmt: skip
    for d in devices if labelled else ():
        extra = " + emb" if d.embedding else (" + head" if d.head else "")
        ax.text(d.dp * tp + d.tp + 0.5, d.pp + 0.5,
                f"GPU {d.rank}\n{_layer_span(d.layers)}{extra}\n"
                f"{gb[d.pp, d.dp * tp + d.tp]:.2f} GB", ha="center", va="center",
                fontsize=7, gid=f"gpu {d.rank}: dp {d.dp}, stage {d.pp}, tp {d.tp}")  # fmt: skip
    stages = {d.pp: d.layers for d in devices}
    ax.set_yticks([p + 0.5 for p in range(pp)])
    ax.set_yticklabels([f"stage {p}: {_layer_span(stages[p])}" for p in range(pp)],
                       fontsize=7 if pp <= 16 else 5)  # fmt: skip
    ax.set_xticks([c + 0.5 for c in range(dp * tp)])
    ax.set_xticklabels([str(c % tp) for c in range(dp * tp)], fontsize=7 if labelled else 5)
    ax.tick_params(length=0)
    ax.set_xlabel(f"tensor-parallel rank within each data-parallel replica: each holds 1/{tp} "
                  "of every matrix of its stage", fontsize=9)  # fmt: skip
    fig.colorbar(image, ax=ax, label="training state per device (GB)", fraction=0.03, pad=0.02)
    ax.set_title(
        f"{cfg.name}: {dp} (data) × {tp} (tensor) × {pp} (pipeline) = {len(devices)} devices, "
        f"{float(gb.min()):.1f}–{float(gb.max()):.1f} GB each at {bytes_per_param:g} B/param",
        fontsize=10,
        pad=18,
    )
    fig.tight_layout()
    return fig
