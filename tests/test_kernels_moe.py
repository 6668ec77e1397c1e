"""course_lib.kernels.moe against explicit loops and HF's Mixtral / DeepSeek-V3 MoE blocks."""

import pytest
import torch
import torch.nn.functional as F
from transformers import DeepseekV3Config, Llama4TextConfig, MixtralConfig
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE
from transformers.models.llama4.modeling_llama4 import Llama4TextMoe
from transformers.models.mixtral.modeling_mixtral import (
    MixtralSparseMoeBlock,
    load_balancing_loss_func,
)

from course_lib.kernels import (
    DeepSeekMoE,
    SparseMoE,
    expert_load,
    load_balancing_loss,
    top_k_routing,
)

DIM, HIDDEN, E = 16, 24, 8


def _x(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _expert_loop(moe, x, weights, indices):
    """sum over tokens t and slots j of w[t, j] * FFN_e(x_t), one token and one expert at a time."""
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(indices.shape[1]):
            e = int(indices[t, j])
            w_gate, w_up = moe.experts.gate_up_proj[e].chunk(2, dim=0)
            h = F.silu(w_gate @ x[t]) * (w_up @ x[t])
            out[t] += weights[t, j] * (moe.experts.down_proj[e] @ h)
    return out


def test_sparse_moe_equals_per_token_per_expert_loop():
    torch.manual_seed(0)
    moe = SparseMoE(DIM, HIDDEN, E, k=2).double()
    x = _x(2, 5, DIM)
    with torch.no_grad():
        y, routing = moe(x, return_routing=True)
        flat = x.reshape(-1, DIM)
        logits = flat @ moe.gate.weight.T
        weights, indices = torch.topk(torch.softmax(logits, -1), 2, dim=-1)  # Mixtral, eq. in §2.1
        weights = weights / weights.sum(-1, keepdim=True)
        torch.testing.assert_close(routing.indices, indices)
        torch.testing.assert_close(y.reshape(-1, DIM), _expert_loop(moe, flat, weights, indices))


def test_sparse_moe_matches_hf_mixtral_block():
    cfg = MixtralConfig(
        hidden_size=DIM, intermediate_size=HIDDEN, num_local_experts=E, num_experts_per_tok=2
    )
    torch.manual_seed(1)
    hf = MixtralSparseMoeBlock(cfg).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.2)
    moe = SparseMoE(DIM, HIDDEN, E, k=2)
    moe.load_state_dict(hf.state_dict())  # same names and shapes: gate.weight, experts.*
    x = _x(3, 7, DIM, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(moe(x), hf(x))


def _llama4_pair(k, dtype, seed=3):
    """transformers' Llama4TextMoe with random weights and our SparseMoE loaded from it."""
    cfg = Llama4TextConfig(
        hidden_size=DIM, intermediate_size=HIDDEN, num_local_experts=E, num_experts_per_tok=k
    )
    torch.manual_seed(seed)
    hf = Llama4TextMoe(cfg).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    moe = SparseMoE(
        DIM, HIDDEN, E, k, order="topk_sigmoid", renormalize=False, gate_in_fp32=False,
        gate_on_input=True, n_shared_experts=1,
    )  # fmt: skip
    sd = hf.state_dict()
    moe.load_state_dict(
        {
            "gate.weight": sd["router.weight"],
            # HF multiplies x @ W: (E, dim, 2H) and (E, H, dim); ours are (E, out, in)
            "experts.gate_up_proj": sd["experts.gate_up_proj"].transpose(1, 2),
            "experts.down_proj": sd["experts.down_proj"].transpose(1, 2),
            **{f"shared_experts.{n[len('shared_expert.'):]}": t
               for n, t in sd.items() if n.startswith("shared_expert.")},
        }
    )  # fmt: skip
    return hf.to(dtype), moe.to(dtype)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_llama4_moe_equals_hf_exactly(k, dtype):
    # Llama4TextMoe: top-k logits, sigmoid gates on the experts' *inputs*, plus a shared expert;
    # it runs every expert on every token (zero-gated), we only the chosen ones.
    hf, moe = _llama4_pair(k, dtype)
    x = _x(3, 7, DIM, dtype=dtype)
    with torch.no_grad():
        expected = hf(x)[0].reshape(x.shape)
        torch.testing.assert_close(
            moe(x), expected, rtol=0, atol=0 if dtype == torch.bfloat16 else 1e-6
        )


def test_llama4_gates_the_inputs_not_the_outputs():
    hf, moe = _llama4_pair(2, torch.float32)
    x = _x(3, 7, DIM, dtype=torch.float32)
    with torch.no_grad():
        expected = hf(x)[0].reshape(x.shape)
        moe.gate_on_input = False  # Mixtral's g E(x): a different function, E is not linear
        assert (moe(x) - expected).abs().max() > 1e-2


def test_router_orders():
    logits = _x(50, E, seed=2)
    w_sm, i_sm = top_k_routing(logits, 2, order="softmax_topk", renormalize=True)
    w_tk, i_tk = top_k_routing(logits, 2, order="topk_softmax")
    torch.testing.assert_close(i_sm, i_tk)
    assert w_sm.dtype == w_tk.dtype == torch.float64  # float64 logits are routed in float64
    torch.testing.assert_close(w_sm, w_tk)  # renormalised softmax == softmax of the top k
    w_raw, _ = top_k_routing(logits, 2, renormalize=False)
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(w_raw, probs.gather(1, i_sm))
    w_32, _ = top_k_routing(logits.bfloat16(), 2)
    assert w_32.dtype == torch.float32  # low precision is routed in float32, as in HF
    assert (w_raw.sum(-1) < 1).all()


def test_k_equal_to_n_experts_is_the_dense_mixture():
    torch.manual_seed(3)
    moe = SparseMoE(DIM, HIDDEN, E, k=E).double()
    x = _x(6, DIM, seed=4)
    with torch.no_grad():
        gates = torch.softmax(x @ moe.gate.weight.T, -1)  # (N, E)
        dense = sum(gates[:, e : e + 1] * moe.experts.expert(e, x) for e in range(E))
        torch.testing.assert_close(moe(x[None])[0], dense)


def test_load_balancing_loss_is_one_on_uniform_routing():
    n = 64
    logits = torch.zeros(n, E)  # P_i = 1 / E
    for k in (1, 2):
        indices = torch.arange(n * k).reshape(n, k) % E  # f_i = 1 / E
        torch.testing.assert_close(load_balancing_loss(logits, indices, E), torch.tensor(1.0))
    collapsed = torch.zeros(n, 1, dtype=torch.long)  # every token to expert 0
    peaked = torch.zeros(n, E).index_fill_(1, torch.tensor([0]), 10.0)
    assert load_balancing_loss(peaked, collapsed, E) > 7.0  # tends to E when P_0 -> 1


def test_load_balancing_loss_is_hf_mixtral_loss_over_k():
    logits = _x(40, E, seed=5, dtype=torch.float32)
    k = 2
    _, indices = torch.topk(torch.softmax(logits, -1), k, dim=-1)
    hf = load_balancing_loss_func((logits,), E, top_k=k)
    torch.testing.assert_close(load_balancing_loss(logits, indices, E) * k, hf)
    # GShard / GLaM count the first choice only: E * sum_e (c_e / S) * m_e
    first = expert_load(indices[:, 0], E).float() / 40
    expected = E * (first * torch.softmax(logits, -1).mean(0)).sum()
    torch.testing.assert_close(
        load_balancing_loss(logits, indices, E, first_choice_only=True), expected
    )


def _deepseek_config(n_group, topk_group, hidden_act="silu"):
    return DeepseekV3Config(
        hidden_act=hidden_act,
        hidden_size=DIM,
        moe_intermediate_size=HIDDEN,
        n_routed_experts=E,
        num_experts_per_tok=2,
        n_shared_experts=2,
        n_group=n_group,
        topk_group=topk_group,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
    )


def _deepseek_pair(n_group, topk_group, seed, activation="silu"):
    torch.manual_seed(seed)
    hf = DeepseekV3MoE(_deepseek_config(n_group, topk_group, activation)).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    hf.gate.e_score_correction_bias.normal_(std=0.3)
    moe = DeepSeekMoE(
        DIM,
        HIDDEN,
        E,
        2,
        n_shared_experts=2,
        n_group=n_group,
        topk_group=topk_group,
        routed_scaling_factor=2.5,
        activation=activation,
    )
    moe.load_state_dict(
        hf.state_dict()
    )  # gate.weight, gate.e_score_correction_bias, experts.*, shared_experts.*
    return hf, moe


@pytest.mark.parametrize(
    ("n_group", "topk_group", "activation"), [(1, 1, "silu"), (4, 2, "silu"), (1, 1, "gelu")]
)
def test_deepseek_moe_matches_hf(n_group, topk_group, activation):
    # gelu: the shared experts use the configured activation too, not always SiLU
    hf, moe = _deepseek_pair(n_group, topk_group, seed=6, activation=activation)
    x = _x(2, 9, DIM, seed=7, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(moe(x), hf(x))


def test_deepseek_routing_is_group_limited_and_bias_only_selects():
    _, moe = _deepseek_pair(4, 1, seed=8)
    x = _x(30, DIM, seed=9, dtype=torch.float32)
    with torch.no_grad():
        routing = moe.gate(x)
        groups = routing.indices // (E // 4)
        assert (groups == groups[:, :1]).all()  # topk_group=1: both experts in one group
        moe.gate.e_score_correction_bias.zero_()
        moe.gate.e_score_correction_bias[5] = 100.0  # makes expert 5 win every selection
        routing = moe.gate(x)
        assert (routing.indices == 5).any(-1).all()
        s = torch.sigmoid(x @ moe.gate.weight.T)  # the gate values ignore the bias
        chosen = s.gather(1, routing.indices)
        torch.testing.assert_close(routing.weights, 2.5 * chosen / chosen.sum(-1, keepdim=True))


def test_update_bias_moves_towards_balance():
    _, moe = _deepseek_pair(1, 1, seed=10)
    moe.gate.e_score_correction_bias.zero_()
    load = torch.tensor([10, 0, 4, 2, 2, 2, 2, 2])  # mean 3
    moe.update_bias(load, gamma=0.01)
    expected = 0.01 * torch.tensor([-1.0, 1, -1, 1, 1, 1, 1, 1])
    torch.testing.assert_close(moe.gate.e_score_correction_bias, expected)


def test_expert_dispatch_keeps_dtype():
    moe = SparseMoE(DIM, HIDDEN, E, k=2).to(torch.bfloat16)
    x = _x(1, 4, DIM).to(torch.bfloat16)
    with torch.no_grad():
        y = moe(x)
        assert y.dtype == torch.bfloat16
        reference = moe.double()(x.double())
    torch.testing.assert_close(y.double(), reference, rtol=0.05, atol=0.05)
