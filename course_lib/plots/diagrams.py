"""Diagrams of the decoder block's mechanisms, computed from the presets and kernels.

API
- `query_to_kv_head(n_heads, n_kv_heads) -> list[int]`: the key/value head each query head
  reads, found by running `kernels.repeat_kv` on head indices
- `plot_head_sharing(configs) -> Figure`: MHA / GQA / MQA, one panel per ModelConfig
- `block_boxes(cfg) -> dict[slot, (kind, detail)]`: what each part of cfg's decoder is
- `plot_block_diagrams(configs) -> Figure`: the models side by side, differences highlighted
- `rope_rotated(x, positions, base=10000.0) -> (T, d)`: x (d,) rotated to each position by
  `kernels.apply_rope` (interleaved pairs 2i, 2i + 1, as in the RoPE paper)
- `plot_rope_rotation(head_dim=8, base=10000.0, pairs=(0, 1), n_positions=6) -> Figure`

GPT-2: Radford et al. 2019; Llama: Touvron et al. 2023. RoPE: Su et al. 2021 (arXiv:2104.09864). Multi-query attention: Shazeer 2019 (arXiv:1911.02150); grouped-query attention: Ainslie et
al. 2023 (arXiv:2305.13245).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from course_lib.kernels.attention import repeat_kv
from course_lib.kernels.rope import apply_rope, rope_cos_sin, rope_frequencies
from course_lib.models.analytics import kv_cache_bytes
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
