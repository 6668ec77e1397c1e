"""Misconception hints of ps02 (attention), ps03 (AdamW), ps11 (temperature, top-p) and ps13
(chunking, retrieval, recall@k).

Each known-wrong variant is met by a learner function written here independently of
course_lib (plain torch or numpy, as a learner would write the mistake). ps02's, ps03's and
ps13's are run
through the notebook's own check_function on its hidden cases, then through the grader's
outcome (reason, feedback) and the report's count; ps11's are graded for real
(`python -m autograder grade`), since its test cells check worked examples (check_value)
before the random cases: the grader reaches the random cases only for the hint. Every hint
must be the variant's label, in one sentence of the feedback and counted by the class report.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import synthetic
from autograder.__main__ import main
from autograder.evaluate import outcome
from autograder.misconception import MARK, diagnose, sentence
from autograder.report import Row, read_grades, summarise
from autograder.sandbox import Limits
from autograder.spec import TestCell
from autograder.specs import ps02, ps03, ps11, ps13
from autograder.verify import TestRun
from course_lib.grading import lm_cases, retrieval_cases, training_cases
from course_lib.grading.checks import check_function

ROOT = Path(__file__).resolve().parents[1]


def _labels(spec) -> dict[str, str]:
    return {m.variant.rsplit(".", 1)[1]: m.label for m in spec.misconceptions}


def _told_and_counted(error: AssertionError, spec, variant: str, part: str) -> None:
    """The hint diagnose finds is the variant's label, said in one sentence of the learner's
    feedback, marked in grades.csv's reason, and counted by the class report."""
    label = diagnose(error, spec.misconceptions)
    assert label == _labels(spec)[variant]
    test = TestCell(part, 2.0, "check_function(...)", frozenset({1}), frozenset())
    result = outcome(test, TestRun(part, error, [], "", label), Limits(), [])
    assert result.score == 0.0 and result.reason.endswith(f"{MARK}{label}]")
    assert result.feedback.count(label) == 1 and sentence(label) in result.feedback
    row = Row("ann", part, result.score, result.max, result.status, result.reason)
    (summary,) = summarise([row, Row("ben", part, 2.0, 2.0, "ok", "")])
    assert summary.misconceptions == {label: 1}


def _failure(fn, reference, cases, atol, rtol) -> AssertionError:
    with pytest.raises(AssertionError) as info:
        check_function(fn, reference, cases, atol=atol, rtol=rtol)
    return info.value


# ---------------------------------------------------------------- ps02: attention
def _attention(q, k, v, scale, softmax_dim=-1):
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * scale
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=softmax_dim) @ v


def _mha(x, w_qkv, b_qkv, w_o, b_o, n_heads, scale_of):
    B, T, D = x.shape
    q, k, v = torch.nn.functional.linear(x, w_qkv, b_qkv).split(D, dim=-1)
    q, k, v = (t.reshape(B, T, n_heads, D // n_heads).transpose(1, 2) for t in (q, k, v))
    y = _attention(q, k, v, scale_of(D, D // n_heads))
    return torch.nn.functional.linear(y.transpose(1, 2).reshape(B, T, D), w_o, b_o)


def _named(fn, name):
    fn.__name__ = name
    return fn


PS02 = [
    (
        _named(lambda q, k, v: _attention(q, k, v, 1.0), "causal_attention"),
        "causal_attention_unscaled",
    ),
    (
        _named(
            lambda q, k, v: _attention(q, k, v, 1 / math.sqrt(q.shape[-1]), -2),
            "causal_attention",
        ),
        "causal_attention_softmax_over_queries",
    ),
    (_named(lambda *a: _mha(*a, lambda D, d: 1.0), "multi_head_attention"), "mha_unscaled"),
    (
        _named(lambda *a: _mha(*a, lambda D, d: D**-0.5), "multi_head_attention"),
        "mha_scaled_by_model_width",
    ),
]


@pytest.mark.parametrize(("learner", "variant"), PS02, ids=[v for _, v in PS02])
def test_ps02_attention_mistakes_are_named(learner, variant):
    if learner.__name__ == "causal_attention":
        ref, cases = lm_cases.reference_causal_attention, lm_cases.causal_attention_cases(103, 40)
    else:
        ref, cases = lm_cases.reference_multi_head_attention, lm_cases.mha_cases(104, 30)
    error = _failure(learner, ref, cases, 1e-5, 1e-5)
    _told_and_counted(error, ps02.SPEC, variant, f"test_{learner.__name__}_random")


def test_ps02_learner_code_is_right_but_for_the_mistake():
    right = _named(lambda *a: _mha(*a, lambda D, d: d**-0.5), "multi_head_attention")
    cases = lm_cases.mha_cases(104, 30)
    check_function(right, lm_cases.reference_multi_head_attention, cases, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- ps03: AdamW
def adamw_l2(param, grad, m, v, t, lr, betas, eps, weight_decay):
    beta1, beta2 = betas
    grad = grad + weight_decay * param  # the mistake: L2 in the gradient
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_no_correction(param, grad, m, v, t, lr, betas, eps, weight_decay):
    beta1, beta2 = betas
    param = param * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param - lr * m / (v.sqrt() + eps), m, v  # the mistake: no 1 / (1 - beta^t)


@pytest.mark.parametrize(
    ("learner", "variant"),
    [(adamw_l2, "adam_l2_for_adamw"), (adamw_no_correction, "adamw_without_bias_correction")],
)
def test_ps03_adamw_mistakes_are_named(learner, variant):
    learner.__name__ = "adamw_step"
    cases = training_cases.adamw_cases(seed=102, n=30)
    error = _failure(learner, training_cases.reference_adamw_step, cases, 1e-6, 1e-5)
    _told_and_counted(error, ps03.SPEC, variant, "test_ex2_adamw")


def test_an_unknown_adamw_mistake_gets_no_hint():
    def adamw_step(param, grad, m, v, t, lr, betas, eps, weight_decay):
        return adamw_no_correction(param, grad, m, v, t, 2 * lr, betas, eps, weight_decay)

    cases = training_cases.adamw_cases(seed=102, n=30)
    error = _failure(adamw_step, training_cases.reference_adamw_step, cases, 1e-6, 1e-5)
    assert diagnose(error, ps03.SPEC.misconceptions) == ""


# ---------------------------------------------------------------- ps13: retrieval
def _chunks(text, size, step, stop_at_end):
    out, start = [], 0
    while start < len(text):
        out.append(text[start : start + size])
        if stop_at_end and start + size >= len(text):
            break
        start += step
    return out


def _top(scores, k, descending=True):
    order = np.argsort(-scores if descending else scores, axis=1, kind="stable")
    return order[:, :k]


def _cosine_scores(queries, corpus):
    qn = np.linalg.norm(queries, axis=1, keepdims=True)
    cn = np.linalg.norm(corpus, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num((queries / qn) @ (corpus / cn).T)  # a zero row scores 0


def _recall(retrieved, relevant, k, cap):
    per_query = []
    for row, rel in zip(retrieved, relevant, strict=True):
        hits = sum(1 for i in row[:k] if int(i) in rel)
        per_query.append(hits / cap(k, len(rel)))
    return sum(per_query) / len(per_query)


def _chunk_reference(text, size, overlap):
    from course_lib.retrieval.chunking import chunk_fixed

    return [chunk.text for chunk in chunk_fixed(text, size, overlap)]


PS13 = [
    (_named(lambda t, s, o: _chunks(t, s, s, True), "chunk_text"), "chunk_without_overlap"),
    (_named(lambda t, s, o: _chunks(t, s, s - o, False), "chunk_text"), "chunk_with_tail_windows"),
    (_named(lambda q, c, k: _top(q @ c.T, k), "retrieve"), "retrieve_by_dot_product"),
    (
        _named(lambda q, c, k: _top(_cosine_scores(q, c), k, False), "retrieve"),
        "retrieve_least_similar",
    ),
    (
        _named(lambda r, rel, k: _recall(r, rel, k, lambda k, n: k), "recall_at_k"),
        "recall_divided_by_k",
    ),
    (
        _named(lambda r, rel, k: _recall(r, rel, k, lambda k, n: n), "recall_at_k"),
        "recall_uncapped",
    ),
]


@pytest.mark.parametrize(("learner", "variant"), PS13, ids=[v for _, v in PS13])
def test_ps13_retrieval_mistakes_are_named(learner, variant):
    from course_lib.retrieval.index import recall_at_k, retrieve

    ref, cases, tol, part = {  # the hidden cases of ps13's random test cells
        "chunk_text": (_chunk_reference, retrieval_cases.chunk_cases(101, 80), 0, "test_ex1_chunk_random"),
        "retrieve": (retrieve, retrieval_cases.retrieve_cases(102, 60), 0, "test_ex2_retrieve_random"),
        "recall_at_k": (recall_at_k, retrieval_cases.recall_cases(103, 60), 1e-12, "test_ex3_recall_random"),
    }[learner.__name__]  # fmt: skip
    error = _failure(learner, ref, cases, tol, 1e-9 if tol else 0)
    _told_and_counted(error, ps13.SPEC, variant, part)


def test_ps13_learner_code_is_right_but_for_the_mistake():
    from course_lib.retrieval.index import recall_at_k, retrieve

    chunk = _named(lambda t, s, o: _chunks(t, s, s - o, True), "chunk_text")
    check_function(chunk, _chunk_reference, retrieval_cases.chunk_cases(101, 80), atol=0, rtol=0)
    search = _named(lambda q, c, k: _top(_cosine_scores(q, c), k), "retrieve")
    check_function(search, retrieve, retrieval_cases.retrieve_cases(102, 60), atol=0, rtol=0)
    recall = _named(lambda r, rel, k: _recall(r, rel, k, min), "recall_at_k")
    cases = retrieval_cases.recall_cases(103, 60)
    check_function(recall, recall_at_k, cases, atol=1e-12, rtol=1e-9)


def test_a_case_two_mistakes_explain_gets_no_hint():
    """Query 0 finds 2 of 4 relevant ids at k = 2, query 1 its only one: found / |relevant|
    and found / k both give 0.75, so the hint would be a guess."""
    from course_lib.grading.checks import Case
    from course_lib.retrieval.index import recall_at_k

    uncapped = _named(lambda r, rel, k: _recall(r, rel, k, lambda k, n: n), "recall_at_k")
    case = Case((np.array([[4, 2, 7, 1], [0, 3, 5, 6]]), [{4, 2, 7, 9}, {0}], 2))
    assert uncapped(*case.args) == pytest.approx(0.75)
    error = _failure(uncapped, recall_at_k, [case], 1e-12, 1e-9)
    assert diagnose(error, ps13.SPEC.misconceptions) == ""


# ---------------------------------------------------------------- ps11: graded for real
MULTIPLIED = """def temperature_probs(logits, temperature):
    return torch.softmax(logits.float() * temperature, dim=-1)
"""
AFTER_SOFTMAX = """def temperature_probs(logits, temperature):
    return torch.softmax(logits.float(), dim=-1) / temperature
"""
TOP_P = """def top_p_probs(logits, p, temperature=1.0):
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_probs.cumsum(dim=-1) <= p{keep_top}
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)
"""
TOP_P_FIRST = """def top_p_probs(logits, p, temperature=1.0):
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_probs.cumsum(dim=-1) - sorted_probs < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    z = (logits.float() / temperature).masked_fill(~keep, float("-inf"))
    return torch.softmax(z, dim=-1)
"""
PS11 = {  # student: {solution cell: learner source}, the variants they should be told
    "mult": {"ex2_temperature": MULTIPLIED, "ex4_top_p": TOP_P.format(keep_top="")},
    "after": {"ex2_temperature": AFTER_SOFTMAX, "ex4_top_p": TOP_P_FIRST},
    "kept": {"ex4_top_p": TOP_P.format(keep_top="\n    keep_sorted[..., 0] = True")},
}
TOLD = {
    ("mult", "test_ex2_temperature"): "temperature_multiplied",
    ("mult", "test_ex4_top_p"): "top_p_without_crossing_token",
    ("after", "test_ex2_temperature"): "temperature_after_softmax",
    ("after", "test_ex4_top_p"): "top_p_before_temperature",
    ("kept", "test_ex4_top_p"): "top_p_without_crossing_token_top_kept",
}


@pytest.fixture(scope="module")
def ps11_graded(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("ps11")
    students = {}
    for student, cells in PS11.items():
        nb = synthetic.correct(ROOT, "ps11")
        for gid, source in cells.items():
            synthetic.set_cell(nb, gid, source)
        students[student] = ("mistake", nb)
    subs = synthetic.write_class(students, base / "subs", "ps11", "ps11.ipynb")
    out = base / "out"
    argv = ["grade", "ps11", str(subs), "--out", str(out), "--jobs", "2", "--no-progress"]
    assert main(argv) == 0
    return out


def test_ps11_mistakes_are_named_in_grades_and_feedback(ps11_graded):
    out, labels = ps11_graded, _labels(ps11.SPEC)
    with open(out / "grades.csv", newline="") as f:
        rows = {(r["student"], r["part"]): r for r in csv.DictReader(f)}
    for (student, part), variant in TOLD.items():
        row = rows[(student, part)]
        assert float(row["score"]) < float(row["max"]), row
        assert row["reason"].endswith(f"{MARK}{labels[variant]}]"), row
    hinted = {k for k, r in rows.items() if MARK in r["reason"]}
    assert hinted == set(TOLD)  # correct parts and the other students get no hint
    page = (out / "feedback" / "after.html").read_text()
    for variant in ("temperature_after_softmax", "top_p_before_temperature"):
        assert page.count(labels[variant]) == 1
        assert sentence(labels[variant]).split(":")[0] in page


def test_ps11_report_counts_the_mistakes(ps11_graded):
    labels = _labels(ps11.SPEC)
    parts = {s.part: s for s in summarise(read_grades(ps11_graded / "grades.csv"))}
    assert parts["test_ex2_temperature"].misconceptions == {
        labels["temperature_multiplied"]: 1,
        labels["temperature_after_softmax"]: 1,
    }
    crossing = labels["top_p_without_crossing_token"]
    assert crossing == labels["top_p_without_crossing_token_top_kept"]  # one mistake, two forms
    assert parts["test_ex4_top_p"].misconceptions == {
        crossing: 2,
        labels["top_p_before_temperature"]: 1,
    }
    assert main(["report", str(ps11_graded)]) == 0
    known = (ps11_graded / "report.html").read_text().split("<h2>Known mistakes</h2>")[1]
    assert f"<tr><td>test_ex4_top_p</td><td>{crossing}</td><td>2</td></tr>" in known


@pytest.mark.parametrize("spec", [ps02.SPEC, ps03.SPEC, ps11.SPEC, ps13.SPEC], ids=lambda s: s.name)
def test_every_variant_resolves_and_names_a_graded_function(spec):
    from autograder.misconception import _load
    from autograder.spec import prepare, read_bundle

    prepared = prepare(read_bundle(spec.name, ROOT))
    graded = set().union(*(t.names for t in prepared.tests))
    for m in spec.misconceptions:
        assert callable(_load(m.variant)), m
        assert m.function in graded, m
        assert m.label and "." not in m.label.rstrip("."), m  # completes one sentence
