"""course_lib.evaluation: multiple-choice scoring, perplexity, intervals, answer extraction.

Each function is checked against an independent formulation: an explicit per-token loop
of log_softmax on one sequence at a time, torch's cross_entropy on non-overlapping chunks,
the Wilson interval as the root set of its defining quadratic inequality.
"""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.evaluation import (
    MultipleChoiceItem,
    accuracy,
    bits_per_character,
    choice_logprobs,
    evaluate_multiple_choice,
    exact_match,
    extract_answer,
    normalize_number,
    perplexity,
    sliding_window_nll,
    wald_interval,
    wilson_interval,
    window_spans,
)
from course_lib.grading.benchmark_cases import TinyCausalLM

V = 11


@pytest.fixture(scope="module")
def model():
    return TinyCausalLM(vocab_size=V, seed=0).eval()


def explicit_logprob(model, context, continuation):
    """Σ log p(continuation | context), one forward pass per continuation token."""
    total = 0.0
    for t, token in enumerate(continuation):
        prefix = torch.tensor([list(context) + list(continuation[:t])])  # (1, c+t)
        with torch.no_grad():
            logits = model(prefix)[0, -1].double()  # (V,)
        total += torch.log_softmax(logits, dim=-1)[token].item()
    return total


def test_model_is_causal(model):
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(1))
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 3) % V
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[:, :5], model(changed)[:, :5])
        assert not torch.allclose(model(ids)[:, 5:], model(changed)[:, 5:])


def test_choice_logprobs_equals_explicit_loop(model):
    rng = np.random.default_rng(0)
    for _ in range(5):
        context = rng.integers(0, V, rng.integers(1, 8)).tolist()
        choices = [rng.integers(0, V, rng.integers(1, 6)).tolist() for _ in range(4)]
        got = choice_logprobs(model, context, choices)
        expected = [explicit_logprob(model, context, c) for c in choices]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        assert got.dtype == np.float64 and got.shape == (4,)


def test_choice_logprobs_truncates_context_from_the_left(model):
    context, choices = list(range(10)), [[3, 4], [5]]
    got = choice_logprobs(model, context, choices, max_len=6)
    expected = [explicit_logprob(model, context[-4:], c) for c in choices]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="at least one token"):
        choice_logprobs(model, [], choices)


class FixedNextToken(torch.nn.Module):
    """A 'model' whose next-token distribution never changes: p = (0.2, 0.6, 0.2)."""

    def forward(self, ids):  # (B, T) -> (B, T, 3)
        logits = torch.log(torch.tensor([0.2, 0.6, 0.2]))
        return logits.expand(*ids.shape, 3)


def test_length_normalisation_changes_the_prediction():
    # Choice "b" = [0]: ln 0.2 = -1.61 in total and per token. Choice "aaaa" = [1, 1, 1, 1]:
    # 4 ln 0.6 = -2.04 in total, but -0.51 per token. Summed, the short choice wins;
    # normalised by length, the long one does.
    item = MultipleChoiceItem("q", ("b", "aaaa"), answer=1)
    encode = {"q": [2], "b": [0], "aaaa": [1, 1, 1, 1]}.__getitem__
    summed = evaluate_multiple_choice(FixedNextToken(), [item], encode, "none")
    np.testing.assert_allclose(summed.scores[0], [math.log(0.2), 4 * math.log(0.6)])
    assert summed.predictions.tolist() == [0] and summed.accuracy == 0.0
    for normalization in ("token", "char"):
        normalised = evaluate_multiple_choice(FixedNextToken(), [item], encode, normalization)
        np.testing.assert_allclose(normalised.scores[0], [math.log(0.2), math.log(0.6)])
        assert normalised.predictions.tolist() == [1] and normalised.accuracy == 1.0
    with pytest.raises(ValueError, match="normalization"):
        evaluate_multiple_choice(FixedNextToken(), [item], encode, "bytes")


def test_evaluate_multiple_choice_accuracy_and_interval(model):
    rng = np.random.default_rng(3)
    vocab = {str(i): [i] for i in range(V)}
    items = []
    for _ in range(12):
        choices = tuple(str(int(t)) for t in rng.choice(V, 4, replace=False))
        items.append(MultipleChoiceItem(str(int(rng.integers(V))), choices, int(rng.integers(4))))
    result = evaluate_multiple_choice(model, items, vocab.__getitem__, "token")
    expected_pred = [
        int(np.argmax([explicit_logprob(model, [int(it.question)], [int(c)]) for c in it.choices]))
        for it in items
    ]
    assert result.predictions.tolist() == expected_pred
    k = sum(p == it.answer for p, it in zip(expected_pred, items, strict=True))
    assert result.accuracy == k / 12
    assert result.interval == wilson_interval(k, 12)


def test_perplexity_stride_equal_window_is_non_overlapping_chunks(model):
    ids = torch.randint(0, V, (50,), generator=torch.Generator().manual_seed(2))
    window = 8
    nlls = []
    for start in range(0, 50, window):
        chunk = ids[start : start + window]
        if len(chunk) < 2:
            continue
        with torch.no_grad():
            logits = model(chunk[None])[0].double()  # (L, V)
        nlls.append(F.cross_entropy(logits[:-1], chunk[1:], reduction="none"))
    expected = torch.exp(torch.cat(nlls).mean()).item()
    assert perplexity(model, ids, window=window, stride=window) == pytest.approx(expected, 1e-9)
    total, count = sliding_window_nll(model, ids, window, window)
    assert count == sum(len(n) for n in nlls) == 50 - 7  # 7 chunks, each first token unscored


@pytest.mark.parametrize(("window", "stride"), [(8, 3), (8, 1), (5, 4), (64, 16)])
def test_sliding_window_equals_explicit_per_token_loop(model, window, stride):
    ids = torch.randint(0, V, (30,), generator=torch.Generator().manual_seed(4)).tolist()
    # Token t is scored once, in the first window [k*stride, k*stride + window) reaching past t.
    nll = 0.0
    for t in range(1, len(ids)):
        k = next(k for k in range(len(ids)) if min(k * stride + window, len(ids)) > t)
        nll -= explicit_logprob(model, ids[k * stride : t], [ids[t]])
    total, count = sliding_window_nll(model, ids, window, stride)
    assert count == len(ids) - 1
    assert total == pytest.approx(nll, rel=1e-6)


def test_window_at_least_corpus_is_full_context(model):
    ids = list(range(V)) * 2  # (22,)
    full = -sum(explicit_logprob(model, ids[:t], [ids[t]]) for t in range(1, len(ids)))
    assert perplexity(model, ids, window=64) == pytest.approx(math.exp(full / 21), rel=1e-6)
    assert window_spans(22, 64, 16) == [(0, 22, 1)]
    with pytest.raises(ValueError):
        window_spans(22, 1, 1)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    def uniform(ids):  # (B, T) -> (B, T, 7), all logits equal
        return torch.zeros(*ids.shape, 7)

    assert perplexity(uniform, [1, 2, 3, 4, 5, 6], window=3, stride=2) == pytest.approx(7.0)
    assert bits_per_character(10 * math.log(7), 10) == pytest.approx(math.log2(7))


def wilson_by_roots(k, n, z):
    """Roots of (p̂ − p)² = z² p (1 − p) / n: the Wilson interval's definition."""
    p_hat = k / n
    a, b, c = 1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat
    roots = np.sort(np.roots([a, b, c]).real)
    return float(roots[0]), float(roots[1])


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (50, 164), (1000, 1319)])
def test_wilson_interval_solves_its_quadratic(k, n):
    z = 1.959963984540054  # Φ⁻¹(0.975)
    lo, hi = wilson_interval(k, n)
    exp_lo, exp_hi = wilson_by_roots(k, n, z)
    assert lo == pytest.approx(max(exp_lo, 0.0), abs=1e-12)
    assert hi == pytest.approx(min(exp_hi, 1.0), abs=1e-12)
    assert lo <= k / n <= hi


def test_wilson_known_value_and_wald_collapse():
    # 0 successes of 10: the upper limit is z²/(n + z²) = 0.2775 (Wilson 1927, p̂ = 0).
    assert wilson_interval(0, 10)[1] == pytest.approx(3.8414588 / 13.8414588, rel=1e-7)
    assert wald_interval(0, 10) == (0.0, 0.0)  # the normal approximation collapses
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    assert accuracy([1, 2, 3], [1, 0, 3]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        ("She has 5 + 6 = 11 apples. The answer is 11.", "11"),
        ("Step 1: 3 * 4 = 12. So the final answer is $1,250.", "1250"),
        ("The answer is: **-3.50**", "-3.5"),
        ("Thus \\boxed{42} is the result, not 7.", "42"),
        ("It costs 3 dollars each, so 4 cost 12", "12"),
        ("The answer is 8. Wait, no: the answer is 9.", "9"),
        ("I do not know.", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_exact_match_normalises_numbers():
    assert exact_match("so the answer is 1,000.", "1000")
    assert exact_match("#### 18.0", "18")
    assert not exact_match("The answer is 17.", "18")
    assert not exact_match("no number", "18")
    assert normalize_number(" forty ") == "forty"


def test_ngram_model_probabilities():
    from collections import Counter

    from course_lib.evaluation.tiny_lm import NGramLM, WordTokenizer

    text = "the cat sat on the mat . the cat ate ."
    tok = WordTokenizer(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text and tok.encode("the dog") == [tok.index["the"], 0]
    # n = 1: the add-one smoothed unigram distribution, counted by hand.
    unigram = NGramLM(ids, tok.vocab_size, n=1)
    counts = Counter(ids)
    expected = np.array([counts[i] + 1 for i in range(tok.vocab_size)], dtype=np.float64)
    logits = unigram(torch.tensor([ids[:3]]))  # (1, 3, V)
    np.testing.assert_allclose(logits[0, 1].exp().numpy(), expected / expected.sum())
    # n = 3, equal weights: p = (p_unigram + p(w | "cat") + p(w | "the cat")) / 3, where
    # both "cat" and "the cat" were followed once by "sat" and once by "ate".
    trigram = NGramLM(ids, tok.vocab_size, n=3)
    p = trigram(torch.tensor([tok.encode("the cat")]))[0, -1].exp().numpy()  # (V,)
    assert p.sum() == pytest.approx(1.0)
    p_unigram = expected / expected.sum()
    for word in ("sat", "ate"):
        i = tok.index[word]
        assert p[i] == pytest.approx((p_unigram[i] + 0.5 + 0.5) / 3)
    assert p[tok.index["mat"]] == pytest.approx(p_unigram[tok.index["mat"]] / 3)


def test_train_causal_lm_lowers_the_loss():
    from course_lib.evaluation.tiny_lm import CharTokenizer, train_causal_lm

    tok = CharTokenizer("abcabcabc")
    ids = torch.tensor(tok.encode("abc" * 50))
    model = TinyCausalLM(vocab_size=tok.vocab_size, seed=0)
    losses = train_causal_lm(model, ids, steps=60, batch_size=4, seq_len=8, lr=3e-2)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert not model.training
    assert tok.decode(tok.encode("cab?")) == "cab\ufffd"


def test_window_spans_warn_when_a_stride_past_the_window_skips_tokens():
    with pytest.warns(UserWarning, match="never scored"):
        spans = window_spans(20, 4, 6)
    scored = sum(end - first for _, end, first in spans)
    assert scored < 19  # tokens 4, 5, 10, 11, 16, 17 fall between the windows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        window_spans(20, 4, 4)  # non-overlapping windows lose only each window's first token
