"""Misconception hints (autograder.misconception): a failing learner output that equals a
known-wrong variant named by ps08's spec is named; other wrong outputs are not.

The learners' functions are written here independently of course_lib (plain torch), run
through the notebook's own check_function on ps08's cases; no sandbox is needed.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder.evaluate import outcome
from autograder.misconception import MARK, diagnose
from autograder.sandbox import Limits
from autograder.spec import TestCell
from autograder.specs.ps08 import SPEC
from autograder.verify import TestRun
from course_lib.grading.checks import check_function
from course_lib.grading.decoder_cases import (
    attention_cases,
    reference_gqa_attention,
    reference_rms_norm,
    rms_norm_cases,
    with_dtype,
)

LABELS = {m.variant.rsplit(".", 1)[1]: m.label for m in SPEC.misconceptions}


def rms_norm(x, weight, eps=1e-6):  # the mistake: LayerNorm, mean subtracted
    centred = x - x.mean(-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * weight


def rms_norm_no_weight(x, weight, eps=1e-6):  # another mistake, not a known one
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _attention(q, k, v, window, expand, softmax_dim=-1):
    n_rep = q.shape[1] // k.shape[1]
    k, v = expand(k, n_rep), expand(v, n_rep)
    t_q, t_k = q.shape[2], k.shape[2]
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    pos_q = torch.arange(t_k - t_q, t_k)[:, None]
    pos_k = torch.arange(t_k)[None, :]
    keep = pos_k <= pos_q
    if window is not None:
        keep &= pos_q - pos_k < window
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(softmax_dim), v)


def _tiled(x, n):
    return torch.cat([x] * n, dim=1)  # heads 0 1 0 1: what `repeat` gives


def _grouped(x, n):
    return torch.stack([x] * n, dim=2).flatten(1, 2)  # heads 0 0 1 1


def gqa_attention(q, k, v, window=None):
    return _attention(q, k, v, window, _tiled)


def _failure(fn, reference, cases) -> AssertionError:
    with pytest.raises(AssertionError) as info:
        check_function(with_dtype(fn), with_dtype(reference), cases, atol=1e-5, rtol=1e-5)
    return info.value


def test_layer_norm_for_rms_norm_is_named():
    error = _failure(rms_norm, reference_rms_norm, rms_norm_cases(seed=1, n=6))
    assert diagnose(error, SPEC.misconceptions) == LABELS["layer_norm_for_rms_norm"]


def test_an_unknown_mistake_gets_no_hint():
    rms_norm_no_weight.__name__ = "rms_norm"
    error = _failure(rms_norm_no_weight, reference_rms_norm, rms_norm_cases(seed=1, n=6))
    assert diagnose(error, SPEC.misconceptions) == ""


def test_gqa_mistakes_are_told_apart():
    cases = attention_cases(seed=4, n=6)
    check_function(  # the learner-side attention itself is right when heads are grouped
        with_dtype(lambda q, k, v, w=None: _attention(q, k, v, w, _grouped)),
        with_dtype(reference_gqa_attention),
        cases,
        atol=1e-5,
        rtol=1e-5,
    )
    tiled = _failure(gqa_attention, reference_gqa_attention, cases)
    assert diagnose(tiled, SPEC.misconceptions) == LABELS["gqa_tiled_heads"]

    def gqa_attention_2(q, k, v, window=None):
        return _attention(q, k, v, window, _grouped, softmax_dim=-2)

    gqa_attention_2.__name__ = "gqa_attention"
    wrong_axis = _failure(gqa_attention_2, reference_gqa_attention, cases)
    assert diagnose(wrong_axis, SPEC.misconceptions) == LABELS["softmax_over_queries"]


def test_feedback_says_it_in_one_sentence_and_the_reason_marks_it():
    error = _failure(rms_norm, reference_rms_norm, rms_norm_cases(seed=1, n=6))
    label = diagnose(error, SPEC.misconceptions)
    test = TestCell("test_ex1_rms_norm_random", 2.0, "check(...)", frozenset({1}), frozenset())
    result = outcome(test, TestRun(test.grade_id, error, [], "", label), Limits(), [])
    assert result.score == 0.0 and result.reason.endswith(f"{MARK}{label}]")
    assert result.feedback.count(label) == 1 and result.feedback.rstrip().endswith(
        f"a known mistake gives: {label}."
    )
