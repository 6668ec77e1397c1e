"""The Gopher family (Rae et al. 2021, Table 1): six models from 44M to 280B, as ModelConfig.

Registered into `PRESETS` as `gopher-44m` … `gopher-7.1b` (the 280B model is `gopher-280b`
in `presets.py`). All share Gopher's architecture: RMSNorm, Transformer-XL relative
positions, a 32,000-token SentencePiece vocabulary and a 4·d_model GELU feed-forward.
"""

from __future__ import annotations

from course_lib.models.config import ModelConfig
from course_lib.models.presets import PRESETS

GOPHER_SOURCE = (
    "Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training "
    "Gopher, Table 1"
)

# (name, n_layers, n_heads, key/value size, d_model), Rae et al. 2021, Table 1.
GOPHER_FAMILY = (
    ("gopher-44m", 8, 16, 32, 512),
    ("gopher-117m", 12, 12, 64, 768),
    ("gopher-417m", 12, 12, 128, 1536),
    ("gopher-1.4b", 24, 16, 128, 2048),
    ("gopher-7.1b", 32, 32, 128, 4096),
)


def _gopher(name: str, n_layers: int, n_heads: int, head_dim: int, d_model: int) -> ModelConfig:
    return PRESETS["gopher-280b"].replace(
        name=name,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=head_dim,
        d_model=d_model,
        d_ff=4 * d_model,
        source=GOPHER_SOURCE,
    )


HISTORY_PRESETS: dict[str, ModelConfig] = {
    name: _gopher(name, *shape) for name, *shape in GOPHER_FAMILY
}
PRESETS.update(HISTORY_PRESETS)
