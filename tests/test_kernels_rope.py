"""course_lib.kernels.rope: layouts, the relative-position property, and HF's scaled frequencies."""

import math

import pytest
import torch
from transformers import LlamaConfig, Olmo2Config
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
from transformers.models.olmo2.modeling_olmo2 import Olmo2RotaryEmbedding
from transformers.models.olmo2.modeling_olmo2 import (
    apply_rotary_pos_emb as olmo2_apply_rotary_pos_emb,
)

from course_lib.kernels import (
    RotaryEmbedding,
    apply_rope,
    rope_attention_factor,
    rope_cos_sin,
    rope_frequencies,
    yarn_get_mscale,
)

D = 16


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _tables(t, dtype=torch.float64, theta=10000.0):
    return rope_cos_sin(torch.arange(t), rope_frequencies(D, theta, dtype=dtype))


def test_half_and_interleaved_are_the_same_rotation_up_to_a_permutation():
    x = _rand(2, 3, 7, D)
    cos, sin = _tables(7)
    deinterleave = torch.cat((torch.arange(0, D, 2), torch.arange(1, D, 2)))  # (x0,x2,..,x1,x3,..)
    rotated_interleaved = apply_rope(x, cos, sin, layout="interleaved")
    rotated_half = apply_rope(x[..., deinterleave], cos, sin, layout="half")
    torch.testing.assert_close(rotated_interleaved[..., deinterleave], rotated_half)
    assert not torch.allclose(rotated_interleaved, apply_rope(x, cos, sin, layout="half"))


def test_interleaved_equals_complex_multiplication():
    """Meta's Llama: x viewed as d/2 complex numbers times exp(i m theta_j) (Su et al., eq. 34)."""
    x = _rand(1, 2, 9, D)
    inv_freq = rope_frequencies(D, dtype=torch.float64)
    angles = torch.outer(torch.arange(9, dtype=torch.float64), inv_freq)  # (T, D/2)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)
    x_complex = torch.view_as_complex(x.reshape(*x.shape[:-1], D // 2, 2).contiguous())
    expected = torch.view_as_real(x_complex * freqs_cis).flatten(-2)
    cos, sin = rope_cos_sin(torch.arange(9), inv_freq)
    torch.testing.assert_close(apply_rope(x, cos, sin, layout="interleaved"), expected)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_scores_depend_only_on_relative_position(layout):
    q, k = _rand(D, seed=1), _rand(D, seed=2)
    cos, sin = _tables(64)

    def score(m, n):
        qm = apply_rope(q.expand(1, 1, 64, D), cos, sin, layout)[0, 0, m]
        kn = apply_rope(k.expand(1, 1, 64, D), cos, sin, layout)[0, 0, n]
        return torch.dot(qm, kn)

    for m, n in [(5, 2), (17, 0), (40, 40)]:
        for shift in (1, 9, 23):
            torch.testing.assert_close(score(m, n), score(m + shift, n + shift))
    assert not torch.allclose(score(5, 2), score(5, 3))  # but it does depend on m - n


def test_rotation_preserves_norm_and_position_zero_is_identity():
    x = _rand(2, 2, 6, D)
    cos, sin = _tables(6)
    for layout in ("half", "interleaved"):
        y = apply_rope(x, cos, sin, layout)
        torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
        torch.testing.assert_close(y[:, :, 0], x[:, :, 0])


def test_matches_hf_llama_rotary_bit_for_bit():
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, head_dim=D, max_position_embeddings=64)
    hf_rope = LlamaRotaryEmbedding(cfg)
    q, k = _rand(2, 4, 10, D, dtype=torch.float32), _rand(2, 4, 10, D, seed=3, dtype=torch.float32)
    positions = torch.arange(10).expand(2, 10)
    hf_cos, hf_sin = hf_rope(q, positions)
    hf_q, hf_k = apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
    cos, sin = RotaryEmbedding(D, cfg.rope_parameters["rope_theta"])(positions)  # (B, T, D/2)
    torch.testing.assert_close(apply_rope(q, cos, sin), hf_q, rtol=0, atol=0)
    torch.testing.assert_close(apply_rope(k, cos, sin), hf_k, rtol=0, atol=0)


def test_upcast_matches_hf_olmo2_rotary_in_bf16():
    # OLMo 2 keeps cos/sin in float32, so q (bf16) * cos promotes: the rotation runs in float32
    cfg = Olmo2Config(hidden_size=64, num_attention_heads=4, max_position_embeddings=64)
    q = _rand(2, 4, 10, D, dtype=torch.float32).to(torch.bfloat16) * 8
    positions = torch.arange(10).expand(2, 10)
    hf_cos, hf_sin = Olmo2RotaryEmbedding(cfg)(q, positions)
    hf_q, _ = olmo2_apply_rotary_pos_emb(q, q, hf_cos, hf_sin)
    cos, sin = RotaryEmbedding(D, cfg.rope_parameters["rope_theta"])(positions)
    torch.testing.assert_close(apply_rope(q, cos, sin, upcast=True), hf_q, rtol=0, atol=0)
    assert not torch.equal(apply_rope(q, cos, sin), hf_q)  # casting cos/sin to bf16 differs


def test_decode_positions_are_rows_of_the_full_table():
    inv_freq = rope_frequencies(D)
    cos_full, sin_full = rope_cos_sin(torch.arange(12), inv_freq)
    cos, sin = rope_cos_sin(torch.arange(9, 12), inv_freq)
    torch.testing.assert_close(cos, cos_full[9:])
    torch.testing.assert_close(sin, sin_full[9:])


def test_partial_rotary_leaves_the_other_channels_alone():
    x = _rand(1, 2, 5, D)
    cos, sin = rope_cos_sin(torch.arange(5), rope_frequencies(D // 2, dtype=torch.float64))
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y[..., D // 2 :], x[..., D // 2 :])
    torch.testing.assert_close(y[..., : D // 2], apply_rope(x[..., : D // 2], cos, sin))


SCALINGS = [
    {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
    {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 8.0,
        "original_max_position_embeddings": 256,
    },
    {  # DeepSeek-V3 style: mscale / mscale_all_dim and explicit betas
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 4.0,
        "original_max_position_embeddings": 512,
        "mscale": 1.0,
        "mscale_all_dim": 0.8,
        "beta_fast": 32,
        "beta_slow": 1,
    },
    {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 256,
    },
]


@pytest.mark.parametrize("params", SCALINGS, ids=lambda p: p["rope_type"])
def test_scaled_frequencies_match_transformers(params):
    head_dim, max_pos, seq_len = 64, 2048, 4096
    cfg = LlamaConfig(
        hidden_size=256,
        num_attention_heads=4,
        head_dim=head_dim,
        max_position_embeddings=max_pos,
        rope_parameters=dict(params),
    )
    hf_inv_freq, hf_factor = ROPE_INIT_FUNCTIONS[params["rope_type"]](cfg, "cpu", seq_len=seq_len)
    scaling = {**params, "max_position_embeddings": max_pos}
    inv_freq = rope_frequencies(head_dim, params["rope_theta"], scaling, seq_len=seq_len)
    torch.testing.assert_close(inv_freq, hf_inv_freq, rtol=0, atol=0)
    assert rope_attention_factor(scaling) == pytest.approx(hf_factor, rel=1e-15)


def test_static_ntk_is_dynamic_ntk_at_the_scaled_length():
    """bloc97's base change base * s^(d/(d-2)) is HF's dynamic NTK with factor 1 at L = s * L_max."""
    s, max_pos = 4.0, 1024
    cfg = LlamaConfig(
        hidden_size=256,
        num_attention_heads=4,
        head_dim=64,
        max_position_embeddings=max_pos,
        rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 1.0},
    )
    hf_inv_freq, _ = ROPE_INIT_FUNCTIONS["dynamic"](cfg, "cpu", seq_len=int(s * max_pos))
    ntk = rope_frequencies(64, 10000.0, {"rope_type": "ntk", "factor": s})
    torch.testing.assert_close(ntk, hf_inv_freq, rtol=1e-6, atol=0)
    base = rope_frequencies(64, 10000.0)
    assert ntk[0] == base[0]  # the highest frequency is untouched ...
    # ... the lowest, base'^(-(d-2)/d) = base^(-(d-2)/d) / s, is divided by s
    torch.testing.assert_close(ntk[-1], base[-1] / s, rtol=1e-5, atol=0)


def test_linear_scaling_is_position_interpolation():
    """Chen et al. 2023: RoPE at position m / s equals PI-scaled RoPE at position m."""
    inv_freq = rope_frequencies(D, dtype=torch.float64)
    scaled = rope_frequencies(
        D, scaling={"rope_type": "linear", "factor": 4.0}, dtype=torch.float64
    )
    cos_pi, _ = rope_cos_sin(torch.arange(0, 40, 4), scaled)
    cos_plain, _ = rope_cos_sin(torch.arange(10), inv_freq)
    torch.testing.assert_close(cos_pi, cos_plain)


def test_yarn_and_llama3_keep_high_and_scale_low_frequencies():
    base = rope_frequencies(64, 500000.0)
    for scaling in SCALINGS[2:]:
        scaled = rope_frequencies(64, 500000.0, scaling)
        assert scaled[0] == base[0]
        torch.testing.assert_close(scaled[-1], base[-1] / scaling["factor"])
        assert torch.all(scaled <= base)


def test_yarn_mscale_formula_and_dataclass_style_keys():
    # Peng et al. 2023, eq. 22: sqrt(1/t) = 0.1 ln(s) + 1
    assert yarn_get_mscale(16.0) == pytest.approx(0.1 * math.log(16.0) + 1)
    assert yarn_get_mscale(1.0) == 1.0
    hf_keys = {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 256}
    our_keys = {"kind": "yarn", "factor": 8.0, "original_max_seq_len": 256, "mscale_all_dim": 0.0}
    torch.testing.assert_close(
        rope_frequencies(64, 1e4, our_keys), rope_frequencies(64, 1e4, hf_keys)
    )
    assert rope_attention_factor(our_keys) == rope_attention_factor(hf_keys) == yarn_get_mscale(8.0)


def test_yarn_attention_factor_scales_cos_and_sin_like_hf():
    params = {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 8.0,
        "original_max_position_embeddings": 32,
    }
    cfg = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        head_dim=D,
        max_position_embeddings=256,
        rope_parameters=params,
    )
    x = torch.zeros(1, 20, D)
    positions = torch.arange(20)[None]
    hf_cos, hf_sin = LlamaRotaryEmbedding(cfg)(x, positions)
    cos, sin = RotaryEmbedding(D, 10000.0, params)(positions)
    torch.testing.assert_close(torch.cat((cos, cos), -1), hf_cos, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat((sin, sin), -1), hf_sin, rtol=0, atol=0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="even"):
        rope_frequencies(7)
    with pytest.raises(ValueError, match="rope_type"):
        rope_frequencies(8, scaling={"rope_type": "longrope"})
    cos, sin = _tables(3)
    with pytest.raises(ValueError, match="layout"):
        apply_rope(_rand(1, 1, 3, D), cos, sin, layout="rotate")


def test_rotary_embedding_dynamic_ntk_follows_the_largest_position():
    scaling = {"rope_type": "dynamic", "factor": 4.0, "max_position_embeddings": 8}
    rope = RotaryEmbedding(D, 10000.0, scaling)
    long_cos, _ = rope(torch.arange(20))
    expected = rope_cos_sin(torch.arange(20), rope_frequencies(D, 10000.0, scaling, seq_len=20))
    torch.testing.assert_close(long_cos, expected[0], rtol=0, atol=0)
    assert not torch.equal(long_cos, RotaryEmbedding(D, 10000.0)(torch.arange(20))[0])
