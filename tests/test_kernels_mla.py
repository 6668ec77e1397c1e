"""course_lib.kernels.mla: absorbed == naive, cached decode == full, and HF's DeepseekV3Attention."""

import pytest
import torch
from transformers import DeepseekV3Config
from transformers.models.deepseek_v3.modeling_deepseek_v3 import (
    DeepseekV3Attention,
    DeepseekV3RotaryEmbedding,
)

from course_lib.kernels import (
    MultiHeadLatentAttention,
    latent_cache_bytes_per_token,
    mla_softmax_scale,
    rope_attention_factor,
    rope_cos_sin,
    rope_frequencies,
)

DIM, H, T = 32, 4, 7
DIMS = dict(kv_lora_rank=12, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6)
YARN = {
    "rope_type": "yarn",
    "rope_theta": 10000.0,
    "factor": 4.0,
    "original_max_position_embeddings": 32,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
    "beta_fast": 32,
    "beta_slow": 1,
}
HF_NAMES = {
    "q_proj": "wq",
    "q_a_proj": "wq_a",
    "q_a_layernorm": "q_norm",
    "q_b_proj": "wq_b",
    "kv_a_proj_with_mqa": "wkv_a",
    "kv_a_layernorm": "kv_norm",
    "kv_b_proj": "wkv_b",
    "o_proj": "wo",
}


def _mla(q_lora_rank, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    mla = MultiHeadLatentAttention(DIM, H, q_lora_rank=q_lora_rank, **DIMS, **kw).to(dtype)
    for p in mla.parameters():  # random norm gains too, so that they are exercised
        torch.nn.init.normal_(p, mean=0.5 if p.dim() == 1 else 0.0, std=0.3)
    return mla


def _tables(positions, dtype=torch.float64):
    return rope_cos_sin(positions, rope_frequencies(DIMS["qk_rope_head_dim"], dtype=dtype))


def _x(*shape, seed=1, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("q_lora_rank", [None, 10])
@pytest.mark.parametrize("rope_layout", ["half", "interleaved"])
def test_absorbed_equals_naive(q_lora_rank, rope_layout):
    mla = _mla(q_lora_rank, rope_layout=rope_layout)
    x = _x(2, T, DIM)
    cos, sin = _tables(torch.arange(T))
    with torch.no_grad():
        naive, cache_naive = mla(x, cos, sin)
        absorbed, cache_absorbed = mla(x, cos, sin, absorbed=True)
    torch.testing.assert_close(absorbed, naive)
    torch.testing.assert_close(cache_absorbed[0], cache_naive[0])
    assert cache_naive[0].shape == (2, T, DIMS["kv_lora_rank"])
    assert cache_naive[1].shape == (2, T, DIMS["qk_rope_head_dim"])


@pytest.mark.parametrize("absorbed", [False, True])
def test_cached_decode_equals_full_forward(absorbed):
    mla = _mla(10, seed=2)
    x = _x(2, T, DIM, seed=3)
    with torch.no_grad():
        full, _ = mla(x, *_tables(torch.arange(T)))
        prefix = T - 3
        out, cache = mla(x[:, :prefix], *_tables(torch.arange(prefix)), absorbed=absorbed)
        steps = [out]
        for t in range(prefix, T):  # one token at a time, at its absolute position
            out, cache = mla(
                x[:, t : t + 1], *_tables(torch.arange(t, t + 1)), cache=cache, absorbed=absorbed
            )
            steps.append(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    assert cache[0].shape[1] == T


def _hf_attention(q_lora_rank, rope_interleave):
    cfg = DeepseekV3Config(
        hidden_size=DIM,
        num_attention_heads=H,
        num_key_value_heads=H,
        q_lora_rank=q_lora_rank,
        max_position_embeddings=128,
        rope_parameters=dict(YARN),
        rope_interleave=rope_interleave,
        attention_bias=False,
        **DIMS,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(4)
    hf = DeepseekV3Attention(cfg, layer_idx=0).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, mean=0.5 if p.dim() == 1 else 0.0, std=0.3)
    return cfg, hf


@pytest.mark.parametrize(("q_lora_rank", "rope_interleave"), [(None, False), (10, True)])
def test_matches_hf_deepseek_v3_attention(q_lora_rank, rope_interleave):
    cfg, hf = _hf_attention(q_lora_rank, rope_interleave)
    scale = mla_softmax_scale(DIMS["qk_nope_head_dim"] + DIMS["qk_rope_head_dim"], YARN)
    assert scale == pytest.approx(hf.scaling, rel=1e-15)
    mla = MultiHeadLatentAttention(
        DIM,
        H,
        q_lora_rank=q_lora_rank,
        softmax_scale=scale,
        rope_layout="interleaved" if rope_interleave else "half",
        **DIMS,
    )
    renamed = {}
    for name, tensor in hf.state_dict().items():
        module, rest = name.split(".", 1)
        renamed[f"{HF_NAMES[module]}.{rest}"] = tensor
    mla.load_state_dict(renamed)
    x = _x(2, T, DIM, seed=5, dtype=torch.float32)
    positions = torch.arange(T)[None].expand(2, T)
    hf_cos, hf_sin = DeepseekV3RotaryEmbedding(cfg)(x, positions)
    mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)[None, None]
    with torch.no_grad():
        expected, _ = hf(x, position_embeddings=(hf_cos, hf_sin), attention_mask=mask)
        inv_freq = rope_frequencies(DIMS["qk_rope_head_dim"], 10000.0, YARN)
        got, _ = mla(x, *rope_cos_sin(positions, inv_freq, rope_attention_factor(YARN)))
    torch.testing.assert_close(got, expected)


def test_softmax_scale_without_scaling_and_cache_bytes():
    assert mla_softmax_scale(192) == 192**-0.5
    # DeepSeek-V2 Table 1: MLA caches (d_c + d_R) l = 4.5 d_h l elements, d_c = 4 d_h, d_R = d_h / 2
    d_h, layers = 128, 61
    assert latent_cache_bytes_per_token(4 * d_h, d_h // 2, layers, 2) == int(4.5 * d_h * layers * 2)
    mla = _mla(None)
    with torch.no_grad():
        _, (c_kv, k_rope) = mla(_x(1, 3, DIM), *_tables(torch.arange(3)))
    per_token = (c_kv.shape[-1] + k_rope.shape[-1]) * c_kv.element_size()
    assert latent_cache_bytes_per_token(12, 4, 1, c_kv.element_size()) == per_token
