"""The 2025 exercises of ps08 (per-head QK-norm before RoPE) and ps09 (total and active
parameters of a MoE), checked against learner functions written here in plain torch.

A correct learner passes every case; the known mistakes fail and are named by ps08's
misconception hints; ps09's reference plus the rest of a preset gives the published totals.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch

from autograder.misconception import diagnose
from autograder.specs.ps08 import SPEC
from course_lib.grading import check_function, moe_cases
from course_lib.grading.decoder_cases import qk_norm_cases, reference_qk_norm_rope, with_dtype
from course_lib.models import PRESETS, count_parameters, parameter_breakdown

LABELS = {m.variant.rsplit(".", 1)[1]: m.label for m in SPEC.misconceptions}
PUBLISHED = json.loads(
    resources.files("course_lib.data").joinpath("published_totals.json").read_text()
)


def _rms(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rope(x, positions, theta):
    d = x.shape[-1]
    angles = positions.double()[:, None] * theta ** (-torch.arange(0, d, 2).double() / d)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def _heads(x, n_heads):
    b, t, _ = x.shape
    return x.view(b, t, n_heads, -1).transpose(1, 2)


def qk_norm_rope(x, weight, n_heads, positions, theta=10000.0, eps=1e-6):
    return _rope(_rms(_heads(x, n_heads), weight, eps), positions, theta)


def _after_rope(x, weight, n_heads, positions, theta=10000.0, eps=1e-6):
    return _rms(_rope(_heads(x, n_heads), positions, theta), weight, eps)


def _whole_projection(x, weight, n_heads, positions, theta=10000.0, eps=1e-6):
    x = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return _rope(_heads(x, n_heads) * weight, positions, theta)


def _check(fn):
    fn.__name__ = "qk_norm_rope"  # as the notebook's check_function names the learner's
    cases = qk_norm_cases(seed=6, n=20)
    check_function(with_dtype(fn), with_dtype(reference_qk_norm_rope), cases, atol=1e-5, rtol=1e-5)


def test_a_plain_torch_qk_norm_rope_passes():
    _check(qk_norm_rope)


@pytest.mark.parametrize(
    ("mistake", "label"),
    [(_after_rope, "qk_norm_after_rope"), (_whole_projection, "qk_norm_whole_projection")],
)
def test_qk_norm_mistakes_fail_and_are_named(mistake, label):
    with pytest.raises(AssertionError) as info:
        _check(mistake)
    assert diagnose(info.value, SPEC.misconceptions) == LABELS[label]


def _moe_args(cfg):
    moe_layers = sum(cfg.is_moe_layer(i) for i in range(cfg.n_layers))
    return (cfg.d_model, cfg.moe_d_ff, cfg.n_experts, cfg.n_experts_per_tok, moe_layers,
            cfg.n_shared_experts, cfg.moe_bias)  # fmt: skip


@pytest.mark.parametrize("name", ["mixtral-8x7b", "deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b"])
def test_moe_parameters_plus_the_rest_is_the_published_total(name):
    cfg = PRESETS[name]
    total, active = moe_cases.reference_moe_parameters(*_moe_args(cfg))
    b = parameter_breakdown(cfg)
    rest = count_parameters(cfg) - b["experts"] - b["router"] - b["shared_experts"]
    assert 0 < active < total and rest > 0
    assert rest + active == count_parameters(cfg, active=True)
    published = PUBLISHED[name]
    assert rest + total == pytest.approx(published["total"], rel=published["rel_tol"])
    if "active" in published:
        assert rest + active == pytest.approx(published["active"], rel=published["rel_tol"])


def test_moe_parameter_cases_cover_biases_and_shared_experts():
    cases = moe_cases.moe_parameter_cases(seed=105, n=40)
    assert any(c.args[6] for c in cases) and any(c.args[5] for c in cases)
    assert not any(c.args[5] and c.args[6] for c in cases)  # never both (no such model)
    assert any(c.args[3] == c.args[2] for c in cases)  # k = E: total == active
