"""Transformer invariants that need no outside model: windows, parallel blocks, batching,
dtypes and devices, and the guard against instantiating a full-size preset."""

import pytest
import torch

from course_lib.models import PRESETS, ModelConfig, Transformer
from course_lib.models.config import RopeScaling
from course_lib.models.hf_tiny import tiny_input_ids


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread avoids OpenMP synchronisation costs on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def logits_of(cfg: ModelConfig, ids: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    model = Transformer(cfg, device="cpu", init_std=0.3)
    with torch.no_grad():
        return model(ids)


def test_window_at_least_the_sequence_is_full_attention():
    ids = tiny_input_ids(batch=2, seq_len=10)
    cfg = PRESETS["mistral-7b"].scaled(vocab_size=97)
    wide = logits_of(cfg.replace(sliding_window=10), ids)
    torch.testing.assert_close(wide, logits_of(cfg.replace(layer_pattern=("global",)), ids))
    narrow = logits_of(cfg.replace(sliding_window=3), ids)
    assert (narrow - wide).abs().max() > 1e-3
    # the first 3 positions see at most 3 keys either way
    torch.testing.assert_close(narrow[:, :3], wide[:, :3])


def test_parallel_block_is_attention_plus_mlp_of_one_norm():
    # PaLM / GPT-J: y = x + attn(norm(x)) + mlp(norm(x)) (Chowdhery et al. 2022, Section 2)
    cfg = PRESETS["palm-540b"].scaled(vocab_size=97)
    torch.manual_seed(0)
    block = Transformer(cfg, device="cpu", init_std=0.3).layers[0]
    assert block.mlp_norm is None and block.parallel
    x = torch.randn(2, 5, cfg.d_model)
    model = Transformer(cfg, device="cpu")
    cos, sin = model.rope_rotation(*model.rope_tables(torch.arange(5)), x.dtype)  # (5, rope_dim)
    with pytest.raises(ValueError, match="rope_rotation"):  # the (5, rope_dim / 2) frequencies
        block(x, *model.rope_tables(torch.arange(5)), None, 0)
    with torch.no_grad():
        h = block.attn_norm(x)
        expected = x + block.attn(h, cos, sin, None, 0) + block.mlp(h)
        torch.testing.assert_close(block(x, cos, sin, None, 0), expected)


@pytest.mark.parametrize("name", ["mixtral-8x7b", "deepseek-v3", "gemma2-9b", "gpt2"])
def test_sequences_in_a_batch_do_not_interact(name):
    cfg = PRESETS[name].scaled(vocab_size=97)
    ids = tiny_input_ids(batch=3, seq_len=8)
    batched = logits_of(cfg, ids)
    for b in range(3):
        torch.testing.assert_close(
            batched[b : b + 1], logits_of(cfg, ids[b : b + 1]), atol=1e-5, rtol=1e-5
        )


def test_full_size_preset_is_refused_on_the_cpu():
    with pytest.raises(MemoryError, match="scaled"):
        Transformer(PRESETS["llama3-405b"], device="cpu")
    assert Transformer(PRESETS["llama3-405b"], device="meta").device.type == "meta"


def test_to_dtype_keeps_rope_in_float32():
    model = Transformer(PRESETS["llama3.1-8b"].scaled(), device="cpu")
    positions = torch.arange(40)
    cos32, _ = model.rope_tables(positions)
    ids = tiny_input_ids(batch=1, seq_len=6)
    with torch.no_grad():
        logits32 = model(ids)
        model.to(torch.bfloat16)
        cos_bf16, _ = model.rope_tables(positions)
        logits16 = model(ids)
    assert cos_bf16.dtype == torch.float32 and torch.equal(cos32, cos_bf16)
    assert logits16.dtype == torch.bfloat16
    torch.testing.assert_close(logits16.float(), logits32, atol=0.05, rtol=0.05)


def test_meta_device_forward_shapes():
    model = Transformer(PRESETS["olmo2-7b"].scaled(), device="cpu").to("meta")
    assert model.device.type == "meta"
    logits = model(torch.zeros(2, 7, dtype=torch.long, device="meta"))
    assert logits.shape == (2, 7, 256) and logits.device.type == "meta"


def test_rope_interleave_is_the_half_layout_on_permuted_q_k_rows():
    # Meta's original Llama checkpoints rotate pairs (2i, 2i+1); HF permutes the q/k projection
    # rows into halves (i, i + d/2) when converting. The two models must then agree.
    cfg = PRESETS["llama3-8b"].scaled(vocab_size=97)
    ids = tiny_input_ids(batch=2, seq_len=9)
    torch.manual_seed(0)
    interleaved = Transformer(cfg.replace(rope_interleave=True), device="cpu", init_std=0.3)
    half = Transformer(cfg, device="cpu")
    d = cfg.head_dim
    to_half = torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2)))  # (x0, x2, …, x1, x3, …)
    state = dict(interleaved.state_dict())
    for name in list(state):
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            w = state[name]
            state[name] = w.view(-1, d, w.shape[-1])[:, to_half].reshape(w.shape)
    half.load_state_dict(state)
    with torch.no_grad():
        expected, actual = half(ids), interleaved(ids)
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
        half.load_state_dict(interleaved.state_dict())  # same weights, half layout
        assert (actual - half(ids)).abs().max() > 1e-3  # so rope_interleave is not ignored


def test_rope_scaling_kind_is_validated():
    with pytest.raises(ValueError, match="dynamik"):
        RopeScaling(kind="dynamik")


def test_dynamic_ntk_rescales_with_the_length_like_transformers():
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaling = RopeScaling(kind="dynamic", factor=4.0, original_max_seq_len=8)
    cfg = PRESETS["llama3-8b"].scaled(vocab_size=97).replace(rope_scaling=scaling)
    model = Transformer(cfg, device="cpu")
    hf_cfg = LlamaConfig(
        hidden_size=cfg.d_model, num_attention_heads=cfg.n_heads, head_dim=cfg.head_dim,
        max_position_embeddings=8,
        rope_parameters={"rope_type": "dynamic", "rope_theta": cfg.rope_theta, "factor": 4.0},
    )  # fmt: skip
    for length in (6, 8, 20):  # within the original context the frequencies are unscaled
        hf_inv_freq, _ = ROPE_INIT_FUNCTIONS["dynamic"](hf_cfg, "cpu", seq_len=length)
        positions = torch.arange(length)
        cos, _ = model.rope_tables(positions)
        expected = torch.cos(positions[:, None].float() * hf_inv_freq)
        torch.testing.assert_close(cos, expected, rtol=1e-6, atol=1e-6)
    unscaled = Transformer(cfg.replace(rope_scaling=None), device="cpu")
    assert not torch.allclose(
        model.rope_tables(torch.arange(20))[0], unscaled.rope_tables(torch.arange(20))[0]
    )


@pytest.mark.parametrize("name", ["llama3-8b", "qwen2-7b", "olmo2-7b", "gpt-oss-20b", "gpt2"])
def test_fused_projections_leave_the_logits_unchanged(name):
    """`fuse_projections` stacks q/k/v and gate/up into one matrix each: every output is the
    same dot product, so prefill and cached decoding give the same logits up to float32
    rounding (the BLAS may block a wider product differently); biases, QK-norm and attention
    sinks included; GPT-2's plain MLP and gpt-oss's experts have nothing to fuse."""
    cfg = PRESETS[name].scaled(vocab_size=97)
    torch.manual_seed(0)
    model = Transformer(cfg, device="cpu", init_std=0.3).eval()
    ids = tiny_input_ids(batch=2, seq_len=9)

    def prefill_and_decode() -> tuple[torch.Tensor, torch.Tensor]:
        cache = model.new_cache(2, 9)
        steps = [model(ids[:, :5], cache)] + [model(ids[:, t : t + 1], cache) for t in range(5, 9)]
        return model(ids), torch.cat(steps, 1)

    with torch.no_grad():
        expected = prefill_and_decode()
        model.fuse_projections()
        attn, mlp = model.layers[0].attn, model.layers[0].mlp
        assert attn.qkv_proj is not None and not hasattr(attn, "q_proj")
        assert hasattr(mlp, "gate_up_proj") == (type(mlp).__name__ == "GatedMLP")
        for fused, unfused in zip(prefill_and_decode(), expected, strict=True):
            torch.testing.assert_close(fused, unfused, rtol=1e-5, atol=1e-5)
