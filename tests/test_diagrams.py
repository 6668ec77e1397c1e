"""The book's diagrams draw what the kernels and presets say (course_lib.plots.diagrams)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.hardware.serving import poisson_requests, reserved_tokens
from course_lib.kernels import attention, top_k_routing
from course_lib.models import PRESETS, count_parameters
from course_lib.plots.diagrams import (
    SLOTS,
    block_boxes,
    moe_routing_example,
    parallel_layout,
    plot_block_diagrams,
    plot_flash_tiles,
    plot_head_sharing,
    plot_moe_capacity,
    plot_paged_kv,
    plot_parallel_grid,
    plot_rope_rotation,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _gids(ax, prefix: str) -> list[str]:
    artists = list(ax.patches) + list(ax.lines)
    return [a.get_gid() for a in artists if (a.get_gid() or "").startswith(prefix)]


def _edges(ax) -> list[tuple[int, int]]:
    """(query head, kv head) of every drawn edge 'edge q{i}-kv{j}'."""
    pairs = [g.removeprefix("edge q").split("-kv") for g in _gids(ax, "edge ")]
    return [(int(i), int(j)) for i, j in pairs]


def test_gqa_llama3_8b_draws_32_queries_8_kv_heads_4_per_group():
    cfg = PRESETS["llama3-8b"]
    assert (cfg.n_heads, cfg.n_kv_heads) == (32, 8)
    fig = plot_head_sharing([cfg])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(_gids(ax, "q")) == 32 and len(_gids(ax, "kv")) == 8
    edges = _edges(ax)
    assert sorted(i for i, _ in edges) == list(range(32))  # every query head reads one KV head
    for j in range(8):
        assert sum(kv == j for _, kv in edges) == 4


@pytest.mark.parametrize("name", ["llama2-7b", "llama3-8b", "palm-540b"])
def test_drawn_edges_are_the_heads_attention_reads(name):
    """Query head i's output equals single-head attention with the KV head its edge points to."""
    cfg = PRESETS[name]
    (ax,) = plot_head_sharing([cfg]).axes
    h, h_kv = cfg.n_heads, cfg.n_kv_heads
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, h, 3, 4, generator=g, dtype=torch.float64)
    k, v = torch.randn(2, 1, h_kv, 3, 4, generator=g, dtype=torch.float64)
    out = attention(q, k, v)  # (1, H, 3, 4)
    edges = _edges(ax)
    assert len(edges) == h
    for i, j in edges:
        alone = attention(q[:, i : i + 1], k[:, j : j + 1], v[:, j : j + 1])
        torch.testing.assert_close(out[:, i : i + 1], alone)
    # the colour of a query box is its KV head's colour
    colour = {g: p.get_facecolor()[:3] for p in ax.patches if (g := p.get_gid())}
    assert all(colour[f"q{i}"] == colour[f"kv{j}"] for i, j in edges)


def test_rope_arrows_turn_by_m_theta_i():
    """Each drawn arrow's angle advances by m * theta_i, theta_i = 10000^(-2i/d) (Su et al. eq. 15)."""
    d, n = 8, 6
    fig = plot_rope_rotation(head_dim=d, base=10000.0, pairs=(0, 1), n_positions=n)
    assert isinstance(fig, Figure)
    for i in (0, 1):
        (quiver,) = [c for c in fig.axes[i].collections if c.get_gid() == f"pair {i}"]
        angle = np.arctan2(quiver.V, quiver.U)  # (n,)
        turned = np.angle(np.exp(1j * (angle - angle[0])))  # wrapped to (-pi, pi]
        expected = np.angle(np.exp(1j * np.arange(n) * 10000.0 ** (-2 * i / d)))
        np.testing.assert_allclose(turned, expected, atol=1e-9)
        np.testing.assert_allclose(np.hypot(quiver.U, quiver.V), np.hypot(quiver.U[0], quiver.V[0]))


def test_rope_logits_depend_only_on_offset():
    (image,) = [im for im in plot_rope_rotation().axes[-1].images if im.get_gid() == "logits"]
    logits = np.asarray(image.get_array())  # (16, 16), q_m . k_n
    np.testing.assert_allclose(logits[1:, 1:], logits[:-1, :-1], atol=1e-9)
    assert np.ptp(logits[0]) > 0.5  # but not constant: the offset matters


def _box_texts(fig) -> dict[str, str]:
    return {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid()}


def _highlighted(fig) -> set[str]:
    """Slots drawn as a difference in the first panel."""
    moccasin = matplotlib.colors.to_rgb("moccasin")
    return {
        p.get_gid().split(":")[1]
        for p in fig.axes[0].patches
        if p.get_gid() and p.get_facecolor()[:3] == moccasin
    }


def test_gpt2_vs_llama_block_diagram():
    gpt2, llama = PRESETS["gpt2"], PRESETS["llama3-8b"]
    fig = plot_block_diagrams([gpt2, llama])
    assert isinstance(fig, Figure)
    text = _box_texts(fig)
    for slot in ("norm 1", "norm 2", "final norm"):
        assert text[f"gpt2:{slot}:text"].startswith("LayerNorm (gain + bias)")
        assert text[f"llama3-8b:{slot}:text"].startswith("RMSNorm")
    assert "learned position embedding\n1024 × 768" in text["gpt2:positions:text"]
    assert "RoPE" in text["llama3-8b:attention:text"] and "RoPE" not in text["gpt2:attention:text"]
    assert text["gpt2:mlp:text"] == "GELU (tanh) MLP, 2 matrices, biases\n768 → 3072 → 768"
    assert text["llama3-8b:mlp:text"].startswith(
        "SwiGLU MLP, 3 matrices, no biases\n4096 → 2 × 14336"
    )
    assert "qkv + out biases" in text["gpt2:attention:text"]
    assert "32 q heads, 8 K/V" in text["llama3-8b:attention:text"]
    assert text["gpt2:layers"] == "× 12" and text["llama3-8b:layers"] == "× 32"
    assert _highlighted(fig) == set(SLOTS) - {"embedding", "add 1", "add 2"}


def test_block_diagram_follows_the_config():
    """Change one field of GPT-2 and only that box changes (and stops being a difference)."""
    gpt2, llama = PRESETS["gpt2"], PRESETS["llama3-8b"]
    rms_gpt2 = gpt2.replace(norm="rms")
    fig = plot_block_diagrams([rms_gpt2, llama])
    text = _box_texts(fig)
    assert not {"norm 1", "norm 2", "final norm"} & _highlighted(fig)
    assert text["gpt2:norm 1:text"] == text["llama3-8b:norm 1:text"] == "RMSNorm (gain)"
    assert block_boxes(rms_gpt2)["mlp"] == block_boxes(gpt2)["mlp"]


def test_paged_kv_block_tables_match_the_serving_model():
    """Each sequence gets the blocks `reserved_tokens(paged=True)` charges, each block once."""
    requests = poisson_requests(2.0, 4, prompt_len=(8, 40), output_len=(4, 16), seed=0)
    fig = plot_paged_kv(requests, block_size=16, spare_blocks=3)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    drawn: dict[int, dict[int, int]] = {}
    for gid in _gids(ax, "map "):  # "map s{i} b{j} -> p{k}"
        seq, block, _, phys = gid.removeprefix("map ").split()
        drawn.setdefault(int(seq[1:]), {})[int(block[1:])] = int(phys[1:])
    physical = [k for table in drawn.values() for k in table.values()]
    assert len(physical) == len(set(physical))  # no block shared by two logical blocks
    for i, r in enumerate(requests):
        n_blocks = reserved_tokens(r, paged=True, block_size=16, max_seq_len=4096) // 16
        assert sorted(drawn[i]) == list(range(n_blocks))
        last = drawn[i][n_blocks - 1]
        (fill,) = [p for p in ax.patches if p.get_gid() == f"p{last} fill"]
        used = r.prompt_len + r.output_len - 16 * (n_blocks - 1)
        assert fill.get_width() == pytest.approx(2.0 * used / 16)
    assert len(_gids(ax, "p")) == 2 * len(physical) + 3  # used (outline + fill) and 3 free
    # sequences decoding side by side interleave: sequence 0's blocks are not contiguous
    blocks_0 = list(drawn[0].values())
    assert any(b - a > 1 for a, b in zip(blocks_0, blocks_0[1:], strict=False))


def test_flash_tiles_skip_the_upper_triangle_and_the_running_sums_end_exact():
    t, block, d = 64, 16, 16
    fig = plot_flash_tiles(t=t, block=block, d=d, seed=0)
    assert isinstance(fig, Figure)
    ax, ax_row = fig.axes
    tiles = [tuple(map(int, g.removeprefix("tile ").split(","))) for g in _gids(ax, "tile ")]
    n = t // block
    assert sorted(tiles) == [(i, j) for i in range(n) for j in range(i + 1)]  # causal: j <= i
    assert [int(x.get_text()) for x in ax.texts] == list(range(1, len(tiles) + 1))
    # the last query row: after the last tile, m = max s and ℓ = Σ exp(s - max s)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, t, d, generator=g, dtype=torch.float64)
    s = (q[-1] @ k.T) / d**0.5  # the last row sees every key
    (m_line,) = [x for x in ax_row.lines if x.get_gid() == "running max"]
    (l_line,) = [x for x in ax_row.lines if x.get_gid() == "running sum"]
    m, ell = m_line.get_ydata(), l_line.get_ydata()
    assert len(m) == n and np.all(np.diff(m) >= 0)
    assert m[-1] == pytest.approx(float(s.max()))
    assert ell[-1] == pytest.approx(float(torch.exp(torch.logsumexp(s, 0) - s.max())))
    for j in range(n):  # after tile j: the statistics of the keys seen so far
        seen = s[: (j + 1) * block]
        assert m[j] == pytest.approx(float(seen.max()))
        assert ell[j] == pytest.approx(float(torch.exp(seen - seen.max()).sum()))


def _assignments(ax, kind: str) -> dict[tuple[int, int], tuple[int, int | None]]:
    """(token, choice) -> (expert, slot) of the drawn lines 'kept t{t} choice {j} -> e{e} slot
    {s}' (kind 'kept') or 'dropped t{t} choice {j} -> e{e}' (slot None)."""
    out = {}
    for gid in _gids(ax, kind + " "):
        token, _, j, _, expert, *slot = gid.removeprefix(kind + " ").split()
        out[int(token[1:]), int(j)] = (int(expert[1:]), int(slot[1]) if slot else None)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_moe_capacity_draws_the_routers_choices_and_drops_the_overflow(seed):
    """Switch / GShard semantics read back from the drawing: every (token, choice) of the
    router is drawn once, each expert keeps min(load, C) in queue order, first choices
    before second choices, and the rest are drawn as dropped."""
    n, n_exp = 12, 4
    panels = ((1, 1.0), (2, 1.0), (2, 1.25))
    fig = plot_moe_capacity(n_tokens=n, n_experts=n_exp, panels=panels, seed=seed)
    assert isinstance(fig, Figure)
    drops = []
    for ax, (k, factor) in zip(fig.axes, panels, strict=True):
        routing = moe_routing_example(n, n_exp, k, seed=seed)
        weights, indices = top_k_routing(routing.logits, k)  # the router kernel's choice
        assert torch.equal(indices, routing.indices)
        kept, dropped = _assignments(ax, "kept"), _assignments(ax, "dropped")
        assert set(kept) | set(dropped) == {(t, j) for t in range(n) for j in range(k)}
        assert not set(kept) & set(dropped)
        for (t, j), (e, _) in {**kept, **dropped}.items():
            assert e == int(indices[t, j])
        capacity = math.ceil(factor * n * k / n_exp)  # Fedus et al. 2021, section 2.2
        assert len(_gids(ax, "e0 slot")) == capacity
        for e in range(n_exp):
            mine_kept = sorted((j, t) for (t, j), (ee, _) in kept.items() if ee == e)
            mine_dropped = sorted((j, t) for (t, j), (ee, _) in dropped.items() if ee == e)
            assert len(mine_kept) == min(len(mine_kept) + len(mine_dropped), capacity)
            # queue order: (choice, token); everything kept comes before everything dropped
            if mine_kept and mine_dropped:
                assert mine_kept[-1] < mine_dropped[0]
            slots = [kept[t, j][1] for j, t in mine_kept]
            assert slots == list(range(len(slots)))
        lost = {t for t in range(n) if all((t, j) in dropped for j in range(k))}
        red = {int(p.get_gid()[1:]) for p in ax.patches
               if (p.get_gid() or "").startswith("t") and p.get_edgecolor()[0] > 0.8}  # fmt: skip
        assert red == lost
        drops.append(len(dropped))
    assert drops[1] > drops[2]  # a larger capacity factor drops fewer (this seed's router)


def test_parallel_layout_covers_every_layer_once_in_megatron_rank_order():
    cfg = PRESETS["mt-nlg-530b"]
    dp, tp, pp = 8, 8, 35  # Smith et al. 2022, section 3.2
    devices = parallel_layout(cfg, dp, tp, pp)
    assert [d.rank for d in devices] == list(range(dp * tp * pp))
    for d in devices:
        assert d.rank == d.tp + tp * (d.dp + dp * d.pp)
    for replica in range(dp):
        for t in range(tp):
            mine = [d for d in devices if d.dp == replica and d.tp == t]
            assert [i for d in mine for i in d.layers] == list(range(cfg.n_layers))
    assert {len(d.layers) for d in devices} == {3}  # 105 layers / 35 stages
    # one replica holds the model once, plus the tied embedding's copy on the last stage
    one = sum(d.params for d in devices if d.dp == 0)
    extra = cfg.vocab_size * cfg.d_model
    assert one == pytest.approx(count_parameters(cfg) + extra, rel=1e-12)
    # the embedding stages hold more than the others; the first also the learned positions
    middle = [d.params for d in devices if 0 < d.pp < pp - 1]
    assert max(middle) == min(middle)
    first = next(d for d in devices if d.pp == 0)
    assert cfg.position == "learned"
    positions = cfg.max_seq_len * cfg.d_model
    assert first.params == pytest.approx(middle[0] + (extra + positions) / tp)


def test_parallel_layout_uneven_and_untied():
    cfg = PRESETS["llama2-7b"]  # untied LM head, 32 layers
    devices = parallel_layout(cfg, 1, 2, 5)
    assert [len(d.layers) for d in devices if d.tp == 0] == [7, 7, 6, 6, 6]
    assert sum(d.params for d in devices) == pytest.approx(count_parameters(cfg), rel=1e-12)
    with pytest.raises(ValueError):
        parallel_layout(PRESETS["mixtral-8x7b"], 1, 2, 2)


def test_parallel_grid_draws_the_layout():
    cfg, dp, tp, pp = PRESETS["gpt2"], 2, 2, 4
    fig = plot_parallel_grid(cfg, dp, tp, pp)
    assert isinstance(fig, Figure)
    devices = {d.rank: d for d in parallel_layout(cfg, dp, tp, pp)}
    texts = {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid()}
    assert len(texts) == dp * tp * pp
    for gid, text in texts.items():  # "gpu {r}: dp {d}, stage {p}, tp {t}"
        rank = int(gid.split(":")[0].removeprefix("gpu "))
        d = devices[rank]
        assert gid == f"gpu {rank}: dp {d.dp}, stage {d.pp}, tp {d.tp}"
        assert text.startswith(f"GPU {rank}\nlayers {d.layers[0]}–{d.layers[-1]}")
        assert ("+ emb" in text) == (d.pp == 0) and ("+ head" in text) == (d.pp == pp - 1)
        assert text.endswith(f"{16 * d.params / 1e9:.2f} GB")
    (image,) = [im for im in fig.axes[0].images if im.get_gid() == "devices"]
    grid = np.asarray(image.get_array())  # (pp, dp * tp) GB, column d * tp + t
    assert grid.shape == (pp, dp * tp)
    for d in devices.values():
        assert grid[d.pp, d.dp * tp + d.tp] == pytest.approx(16 * d.params / 1e9)
    # 3 layers per stage: the first stage's 4 devices hold the embedding, not the middle ones
    assert grid[0, 0] > grid[1, 0] == grid[2, 0]
