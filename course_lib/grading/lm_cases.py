"""Seeded inputs and references for the language-model exercises (ps02).

Each `*_cases(seed, n)` returns edge cases followed by `n` random ones for `check_function`;
each `reference_*` is course_lib's implementation called with the exercise's signature:
`course_lib.tokenizers` for BPE, `course_lib.kernels.attention` for attention, and one GPT-2
`Block` of `course_lib.models` for the block. Texts are slices of the pydoc corpus.
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.data.corpus import pydoc_text
from course_lib.grading.checks import Case, random_cases
from course_lib.grading.decoder_cases import split_heads
from course_lib.kernels.attention import attention
from course_lib.models import PRESETS, count_parameters
from course_lib.models.transformer import Block
from course_lib.tokenizers import BPETokenizer, train_bpe

Merges = list[tuple[bytes, bytes]]
_DTYPES = (torch.float32, torch.float64)
_UNICODE = "naïve café — 東京 😀 ½ ٣\u00a0\t\n  x"


def _text(rng: np.random.Generator, lo: int, hi: int) -> str:
    corpus = pydoc_text()
    n = int(rng.integers(lo, hi))
    start = int(rng.integers(0, len(corpus) - n))
    return corpus[start : start + n]


def _randn(rng: np.random.Generator, *shape: int, dtype=torch.float64, scale=1.0) -> torch.Tensor:
    return torch.as_tensor(scale * rng.standard_normal(shape)).to(dtype)


def _dtype(rng: np.random.Generator) -> torch.dtype:
    return _DTYPES[int(rng.integers(len(_DTYPES)))]


# ---------------------------------------------------------------- BPE


def reference_train_bpe(text: str, n_merges: int) -> Merges:
    """The merges, rank order, of byte-level BPE on GPT-2's pre-tokenizer (ties: smallest pair)."""
    return train_bpe(text, n_merges).merges


def _tokenizer(merges: Merges) -> BPETokenizer:
    """Ids 0-255 the bytes, 256 + r the token of merge r (the smallest id if two agree)."""
    vocab = {b: bytes([b]) for b in range(256)}
    vocab.update({256 + r: a + b for r, (a, b) in enumerate(merges)})
    return BPETokenizer(vocab, merges)


def reference_encode(text: str, merges: Merges) -> list[int]:
    return _tokenizer(merges).encode(text)


def reference_decode(ids: list[int], merges: Merges) -> str:
    return _tokenizer(merges).decode(ids)


def train_cases(seed: int, n: int) -> list[Case]:
    """`(text, n_merges)`: repeated letters, ties, no pairs at all, unicode, pydoc slices."""
    edge = [
        Case(("low lower lowest newer wider", 6), label="Sennrich et al.'s example words"),
        Case(("aaaa aaa", 4), label="overlapping pairs: 'aaaa' -> 'aa' 'aa'"),
        Case(("ab ba", 3), label="ties between pairs that occur once"),
        Case(("a b c", 5), label="no pair left after a few merges"),
        Case(("", 3), label="empty text"),
        Case((_UNICODE, 8), label="multi-byte characters"),
    ]

    def make(rng: np.random.Generator) -> Case:
        return Case((_text(rng, 200, 3000), int(rng.integers(1, 60))), label="pydoc slice")

    return random_cases(seed, n, make, edge_cases=edge)


def encode_cases(seed: int, n: int) -> list[Case]:
    """`(text, merges)`: merges learned on one pydoc slice, text from another or unicode."""
    rng = np.random.default_rng(seed + 10_000)
    merges = reference_train_bpe(_text(rng, 3000, 6000), 80)
    edge = [
        Case(("", merges), label="empty text"),
        Case((_UNICODE, merges), label="characters the merges never saw"),
        Case(("the the the", [(b"t", b"h"), (b"th", b"e"), (b" ", b"the")]), label="chained"),
        Case(("aaaaa", [(b"a", b"a"), (b"aa", b"a")]), label="'aaaaa' -> 'aa' 'aa' 'a'"),
    ]

    def make(rng: np.random.Generator) -> Case:
        return Case((_text(rng, 20, 400), merges), label="pydoc slice, 80 merges")

    return random_cases(seed, n, make, edge_cases=edge)


def decode_cases(seed: int, n: int) -> list[Case]:
    """`(ids, merges)`: encoded pydoc slices, and byte ids that are not valid UTF-8."""
    rng = np.random.default_rng(seed + 20_000)
    merges = reference_train_bpe(_text(rng, 3000, 6000), 60)
    edge = [
        Case(([], merges), label="no ids"),
        Case(([0xE6, 0x9D, 0xB1], merges), label="the three bytes of '東'"),
        Case(([0xE6, 0x9D, 104, 105], merges), label="half a character, then 'hi'"),
        Case(([256, 257, 258], merges), label="merged tokens only"),
    ]

    def make(rng: np.random.Generator) -> Case:
        return Case((reference_encode(_text(rng, 20, 400), merges), merges), label="pydoc ids")

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- attention


def reference_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) v for q, k (B, T, d), v (B, T, d_v)."""
    return attention(q[:, None], k[:, None], v[:, None], causal=True)[:, 0]


def causal_attention_cases(seed: int, n: int) -> list[Case]:
    """`(q, k, v)` of shapes (B, T, d), (B, T, d), (B, T, d_v): T = 1, large scores, d_v != d."""
    edge = [
        Case(tuple(torch.randn(3, 1, 1, 4, dtype=torch.float64)), label="T = 1"),
        Case(tuple(30 * torch.randn(3, 2, 5, 8)), label="large scores: softmax must not overflow"),
        Case(
            (torch.zeros(1, 4, 2), torch.zeros(1, 4, 2), torch.arange(8.0).view(1, 4, 2)),
            label="equal scores: token i averages values 0..i",
        ),
    ]

    def make(rng: np.random.Generator) -> Case:
        dtype = _dtype(rng)
        b, t, d, d_v = (int(x) for x in rng.integers(1, [4, 12, 17, 17]))
        q, k = _randn(rng, 2, b, t, d, dtype=dtype)
        return Case((q, k, _randn(rng, b, t, d_v, dtype=dtype)), label=f"{dtype}")

    return random_cases(seed, n, make, edge_cases=edge)


def reference_multi_head_attention(
    x: torch.Tensor,
    w_qkv: torch.Tensor,
    b_qkv: torch.Tensor,
    w_o: torch.Tensor,
    b_o: torch.Tensor,
    n_heads: int,
) -> torch.Tensor:
    """GPT-2's causal self-attention: x (B, T, D), w_qkv (3D, D) = [W_q; W_k; W_v] as
    `nn.Linear` weights, b_qkv (3D,), w_o (D, D), b_o (D,) -> (B, T, D)."""
    B, T, D = x.shape
    q, k, v = torch.nn.functional.linear(x, w_qkv, b_qkv).split(D, dim=-1)  # (B, T, D) each
    y = attention(*(split_heads(t, n_heads) for t in (q, k, v)), causal=True)  # (B, H, T, d)
    return torch.nn.functional.linear(y.transpose(1, 2).reshape(B, T, D), w_o, b_o)


def mha_cases(seed: int, n: int) -> list[Case]:
    """`(x, w_qkv, b_qkv, w_o, b_o, n_heads)`: one head, head_dim 1, many heads."""

    def case(rng: np.random.Generator, b: int, t: int, h: int, d: int, dtype, label: str) -> Case:
        D = h * d
        x = _randn(rng, b, t, D, dtype=dtype)
        w_qkv, w_o = (
            _randn(rng, 3 * D, D, dtype=dtype, scale=D**-0.5),
            _randn(rng, D, D, dtype=dtype),
        )
        b_qkv, b_o = _randn(rng, 3 * D, dtype=dtype), _randn(rng, D, dtype=dtype)
        return Case((x, w_qkv, b_qkv, w_o, b_o, h), label=label)

    rng0 = np.random.default_rng(seed + 30_000)
    edge = [
        case(rng0, 2, 5, 1, 8, torch.float64, "one head"),
        case(rng0, 1, 4, 6, 1, torch.float64, "head_dim 1"),
        case(rng0, 1, 1, 4, 4, torch.float32, "T = 1"),
    ]

    def make(rng: np.random.Generator) -> Case:
        b, t, h, d = (int(x) for x in rng.integers(1, [3, 10, 6, 9]))
        return case(rng, b, t, h, d, _dtype(rng), f"B={b} T={t} H={h} d={d}")

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- GPT-2 block

GPT2_BLOCK_KEYS = ("ln1_weight", "ln1_bias", "w_qkv", "b_qkv", "w_o", "b_o")
GPT2_BLOCK_KEYS += ("ln2_weight", "ln2_bias", "w_fc", "b_fc", "w_proj", "b_proj")


def reference_gpt2_block(
    x: torch.Tensor, params: dict[str, torch.Tensor], n_heads: int
) -> torch.Tensor:
    """One GPT-2 block (Radford et al. 2019), course_lib's `Block` with these weights:
    x + attn(LN1(x)), then h + MLP(LN2(h)), MLP = W_proj gelu_tanh(W_fc h + b) + b."""
    D, d_ff = x.shape[-1], params["w_fc"].shape[0]
    cfg = PRESETS["gpt2"].scaled(d_model=D, n_heads=n_heads, n_layers=1, d_ff=d_ff)
    block = Block(cfg, 0).to(x.dtype)
    w_q, w_k, w_v = params["w_qkv"].split(D)
    b_q, b_k, b_v = params["b_qkv"].split(D)
    weights = {
        "attn_norm.weight": params["ln1_weight"],
        "attn_norm.bias": params["ln1_bias"],
        **{f"attn.{n}_proj.weight": w for n, w in zip("qkv", (w_q, w_k, w_v), strict=True)},
        **{f"attn.{n}_proj.bias": b for n, b in zip("qkv", (b_q, b_k, b_v), strict=True)},
        "attn.o_proj.weight": params["w_o"],
        "attn.o_proj.bias": params["b_o"],
        "mlp_norm.weight": params["ln2_weight"],
        "mlp_norm.bias": params["ln2_bias"],
        "mlp.c_fc.weight": params["w_fc"],
        "mlp.c_fc.bias": params["b_fc"],
        "mlp.c_proj.weight": params["w_proj"],
        "mlp.c_proj.bias": params["b_proj"],
    }
    block.load_state_dict(weights)
    with torch.no_grad():
        return block(x, None, None, None, 0)


def random_gpt2_block_params(
    d_model: int, d_ff: int, *, generator: torch.Generator | None = None, dtype=torch.float64
) -> dict[str, torch.Tensor]:
    """Random weights for `reference_gpt2_block` (matrices scaled by 1/sqrt(fan_in))."""

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=generator, dtype=dtype)

    D = d_model
    return {
        "ln1_weight": 1 + 0.1 * randn(D),
        "ln1_bias": 0.1 * randn(D),
        "w_qkv": randn(3 * D, D, scale=D**-0.5),
        "b_qkv": 0.1 * randn(3 * D),
        "w_o": randn(D, D, scale=D**-0.5),
        "b_o": 0.1 * randn(D),
        "ln2_weight": 1 + 0.1 * randn(D),
        "ln2_bias": 0.1 * randn(D),
        "w_fc": randn(d_ff, D, scale=D**-0.5),
        "b_fc": 0.1 * randn(d_ff),
        "w_proj": randn(D, d_ff, scale=d_ff**-0.5),
        "b_proj": 0.1 * randn(D),
    }


def gpt2_block_cases(seed: int, n: int) -> list[Case]:
    """`(x, params, n_heads)`: GPT-2's 4x MLP and other widths, float32 and float64."""

    def make(rng: np.random.Generator) -> Case:
        h, d = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        D, t, b = h * d, int(rng.integers(1, 10)), int(rng.integers(1, 3))
        d_ff = 4 * D if rng.random() < 0.5 else int(rng.integers(1, 40))
        dtype = _dtype(rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        params = random_gpt2_block_params(D, d_ff, generator=gen, dtype=dtype)
        x = _randn(rng, b, t, D, dtype=dtype, scale=float(rng.uniform(0.5, 3)))
        return Case((x, params, h), label=f"{dtype} B={b} T={t} H={h} D={D} d_ff={d_ff}")

    return random_cases(seed, n, make)


def reference_gpt2_parameters(vocab_size: int, d_model: int, n_layers: int, n_ctx: int) -> int:
    """Parameters of a GPT-2 model (tied output layer), from course_lib's analytics."""
    cfg = PRESETS["gpt2"].replace(
        vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, max_seq_len=n_ctx,
        n_heads=1, n_kv_heads=1, head_dim=d_model, d_ff=4 * d_model,
    )  # fmt: skip
    return count_parameters(cfg)
