"""Models: ModelConfig and PRESETS, one configurable decoder, KV caches, generation, HF import.

- `ModelConfig`, `RopeScaling`, `PRESETS` (published models, each with its `source`)
- `count_parameters`, `parameter_breakdown`, `flops_per_token`, `kv_cache_bytes`, …
- `Transformer(cfg)`: `forward(input_ids) -> logits`; `Cache` and the per-layer caches
- `generate(model, input_ids, max_new_tokens, ...)`
- `from_hf(hf_model)`, `config_from_hf`, `to_hf_config`, `first_divergent_layer`
- `from_gguf(path) -> (Transformer, tokenizer)`: a llama.cpp GGUF file read, dequantized and
  tokenized by course_lib; `smollm2()`: the packaged SmolLM2-135M-Instruct GGUF
- `quantize_for_decode(model, "bf16" | "int8" | "int4")`: decoding on PyTorch's packed
  weight-only kernels (`course_lib.models.quantized`), `decode_weight_bytes(model)`
- `course_lib.models.hf_tiny` (not imported here, it imports transformers): tiny random
  transformers models of every family, for tests and the book
"""

from course_lib.models.analytics import (
    attention_flops_per_token,
    count_parameters,
    flops_per_token,
    kv_cache_bytes,
    kv_cache_elements_per_token,
    matmul_parameters,
    parameter_breakdown,
    weight_bytes_per_token,
)
from course_lib.models.cache import Cache, ChunkKVCache, DenseKVCache, MLACache, RollingKVCache
from course_lib.models.config import ModelConfig, RopeScaling
from course_lib.models.generate import generate
from course_lib.models.gguf import from_gguf, smollm2
from course_lib.models.hf import (
    config_from_hf,
    first_divergent_layer,
    from_hf,
    layer_differences,
    to_hf_config,
)
from course_lib.models.presets import PRESETS
from course_lib.models.presets_history import HISTORY_PRESETS  # adds the Gopher family
from course_lib.models.quantized import decode_weight_bytes, quantize_for_decode
from course_lib.models.transformer import Transformer

__all__ = [
    "HISTORY_PRESETS",
    "PRESETS",
    "Cache",
    "ChunkKVCache",
    "DenseKVCache",
    "MLACache",
    "ModelConfig",
    "RollingKVCache",
    "RopeScaling",
    "Transformer",
    "attention_flops_per_token",
    "config_from_hf",
    "count_parameters",
    "decode_weight_bytes",
    "first_divergent_layer",
    "flops_per_token",
    "from_gguf",
    "from_hf",
    "generate",
    "kv_cache_bytes",
    "kv_cache_elements_per_token",
    "layer_differences",
    "matmul_parameters",
    "parameter_breakdown",
    "quantize_for_decode",
    "smollm2",
    "to_hf_config",
    "weight_bytes_per_token",
]
