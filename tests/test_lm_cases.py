"""The ps02 references (course_lib.grading.lm_cases) against independent peers.

Causal attention against torch's scaled_dot_product_attention, GPT-2's multi-head attention
against torch.nn.MultiheadAttention (same stacked [W_q; W_k; W_v] layout), the block against
transformers' GPT2Block (Conv1D weights are the transposes), the parameter count against
transformers' GPT-2, and the BPE encoder's ids against merges applied by hand.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.grading import lm_cases
from course_lib.models import PRESETS, count_parameters


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    return one_thread


def test_causal_attention_equals_sdpa():
    for case in lm_cases.causal_attention_cases(seed=0, n=8):
        q, k, v = case.args
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        got = lm_cases.reference_causal_attention(q, k, v)
        torch.testing.assert_close(got, expected, msg=case.label)


def test_multi_head_attention_equals_torch_mha():
    for case in lm_cases.mha_cases(seed=0, n=6):
        x, w_qkv, b_qkv, w_o, b_o, h = case.args
        T, D = x.shape[1], x.shape[2]
        mha = torch.nn.MultiheadAttention(D, h, batch_first=True, dtype=x.dtype)
        with torch.no_grad():
            mha.in_proj_weight.copy_(w_qkv)
            mha.in_proj_bias.copy_(b_qkv)
            mha.out_proj.weight.copy_(w_o)
            mha.out_proj.bias.copy_(b_o)
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = may not attend
            expected = mha(x, x, x, attn_mask=mask, need_weights=False)[0]
        got = lm_cases.reference_multi_head_attention(x, w_qkv, b_qkv, w_o, b_o, h)
        torch.testing.assert_close(got, expected, msg=case.label)


def test_gpt2_block_equals_transformers():
    transformers = pytest.importorskip("transformers")
    for case in lm_cases.gpt2_block_cases(seed=0, n=4):
        x, p, h = case.args
        D, d_ff = x.shape[-1], p["w_fc"].shape[0]
        config = transformers.GPT2Config(
            n_embd=D, n_head=h, n_inner=d_ff, n_layer=1, resid_pdrop=0, attn_pdrop=0
        )
        config._attn_implementation = "eager"
        block = transformers.models.gpt2.modeling_gpt2.GPT2Block(config).to(x.dtype).eval()
        conv = {  # Conv1D stores (in, out): the transpose of nn.Linear's weight
            "ln_1.weight": p["ln1_weight"],
            "ln_1.bias": p["ln1_bias"],
            "attn.c_attn.weight": p["w_qkv"].T,
            "attn.c_attn.bias": p["b_qkv"],
            "attn.c_proj.weight": p["w_o"].T,
            "attn.c_proj.bias": p["b_o"],
            "ln_2.weight": p["ln2_weight"],
            "ln_2.bias": p["ln2_bias"],
            "mlp.c_fc.weight": p["w_fc"].T,
            "mlp.c_fc.bias": p["b_fc"],
            "mlp.c_proj.weight": p["w_proj"].T,
            "mlp.c_proj.bias": p["b_proj"],
        }
        block.load_state_dict(conv, strict=False)
        T = x.shape[1]
        causal = torch.full((T, T), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)
        with torch.no_grad():  # the causal mask comes from GPT2Model: pass it to the block
            expected = block(x, attention_mask=causal[None, None])
        expected = expected[0] if isinstance(expected, tuple) else expected
        got = lm_cases.reference_gpt2_block(x, p, h)
        tol = 1e-5 if x.dtype == torch.float32 else 1e-10
        torch.testing.assert_close(got, expected, atol=tol, rtol=tol, msg=case.label)


def test_gpt2_parameters_equal_transformers():
    transformers = pytest.importorskip("transformers")
    sizes = [(50257, 768, 12, 12, 1024), (50257, 1024, 24, 16, 1024), (100, 16, 2, 4, 8)]
    for vocab, d, layers, heads, ctx in sizes:
        config = transformers.GPT2Config(
            vocab_size=vocab, n_embd=d, n_layer=layers, n_head=heads, n_positions=ctx
        )
        with torch.device("meta"):
            model = transformers.GPT2LMHeadModel(config)
        expected = sum(p.numel() for p in model.parameters())
        assert lm_cases.reference_gpt2_parameters(vocab, d, layers, ctx) == expected
    assert count_parameters(PRESETS["gpt2"]) == lm_cases.reference_gpt2_parameters(
        50257, 768, 12, 1024
    )


def test_bpe_references_apply_merges_by_rank():
    merges = [(b"a", b"a"), (b"aa", b"a"), (b"b", b"c"), (b"ab", b"c")]
    # 'aaaaa': rank 0 pairs left to right -> aa aa a; then rank 1 (aa, a) -> aa aaa.
    assert lm_cases.reference_encode("aaaaa", merges) == [256, 257]
    # 'abc': (b, c) has rank 2, there is no (a, b), so 'a' 'bc'.
    assert lm_cases.reference_encode("abc", merges) == [ord("a"), 258]
    assert lm_cases.reference_decode([256, 257, 258], merges) == "aaaaabc"
    assert lm_cases.reference_decode([0xE6, 0x9D, 104], merges) == "\ufffdh"
    for case in lm_cases.decode_cases(seed=0, n=3)[4:]:
        ids, merges = case.args
        assert lm_cases.reference_encode(lm_cases.reference_decode(ids, merges), merges) == ids
