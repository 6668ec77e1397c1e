"""course_lib.kernels.sampling: greedy, top-k, top-p and seeded draws against explicit references."""

import math

import pytest
import torch

from course_lib.kernels import sample, sampling_probs, top_k_filter, top_p_filter

V = 10


def _logits(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_temperature_zero_is_argmax():
    logits = _logits(4, 3, V)
    tokens = sample(logits, temperature=0.0, top_k=2, top_p=0.5, generator=_gen(0))
    assert tokens.shape == (4, 3)
    assert torch.equal(tokens, logits.argmax(-1))


def test_temperature_divides_the_logits():
    logits = _logits(V).double()
    for t in (0.5, 1.0, 3.0):
        torch.testing.assert_close(
            sampling_probs(logits, temperature=t), torch.softmax(logits / t, -1)
        )


def test_top_k_never_samples_outside_the_top_k():
    logits = _logits(8, V, seed=1)
    top3 = torch.topk(logits, 3, dim=-1).indices
    for seed in range(20):
        tokens = sample(logits, top_k=3, temperature=2.0, generator=_gen(seed))  # flat-ish
        assert (tokens[:, None] == top3).any(-1).all()
    kept = torch.isfinite(top_k_filter(logits, 3))
    assert (kept.sum(-1) == 3).all()
    assert torch.equal(top_k_filter(logits, V), logits)


def _minimal_nucleus(probs, p):
    """Explicit loop: add tokens from most to least likely until their total reaches p."""
    order = sorted(range(len(probs)), key=lambda i: -float(probs[i]))
    chosen, total = set(), 0.0
    for i in order:
        chosen.add(i)
        total += float(probs[i])
        if total >= p:
            break
    return chosen


@pytest.mark.parametrize("p", [1e-6, 0.3, 0.75, 0.9, 1.0])
def test_top_p_keeps_the_minimal_set(p):
    logits = _logits(6, V, seed=2).double()
    probs = torch.softmax(logits, -1)
    filtered = top_p_filter(logits, p)
    for row in range(6):
        kept = set(torch.isfinite(filtered[row]).nonzero().flatten().tolist())
        assert kept == _minimal_nucleus(probs[row], p)
        assert len(kept) >= 1
    nucleus = sampling_probs(logits, top_p=p)
    torch.testing.assert_close(nucleus.sum(-1), torch.ones(6, dtype=torch.float64))


def test_top_k_then_top_p():
    logits = _logits(V, seed=3).double()
    both = sampling_probs(logits, top_k=4, top_p=0.8)
    expected = torch.softmax(top_p_filter(top_k_filter(logits, 4), 0.8), -1)
    torch.testing.assert_close(both, expected)
    assert (both > 0).sum() <= 4


def test_same_seed_same_tokens():
    logits = _logits(16, V, seed=4)
    a = sample(logits, temperature=1.3, top_p=0.95, generator=_gen(123))
    b = sample(logits, temperature=1.3, top_p=0.95, generator=_gen(123))
    assert torch.equal(a, b)


def test_empirical_frequencies_follow_the_softmax():
    """Pearson chi-square of 20 000 draws against softmax(logits / T), fixed seed."""
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, -2.0, 0.3])
    n, temperature = 20_000, 1.5
    tokens = sample(logits.expand(n, -1), temperature=temperature, generator=_gen(7))
    counts = torch.bincount(tokens, minlength=8).double()
    expected = n * torch.softmax(logits.double() / temperature, -1)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 24.32  # 0.999 quantile of chi-square with 7 degrees of freedom


def test_bad_arguments_raise():
    logits = _logits(V)
    with pytest.raises(ValueError):
        sample(logits, temperature=-1.0)
    with pytest.raises(ValueError):
        sample(logits, top_p=0.0)
    with pytest.raises(ValueError):
        sample(logits, top_k=0)


def test_top_p_one_keeps_every_token():
    # spread-out logits: the float32 cumulative sum rounds to 1 before the last tokens
    logits = torch.randn(5, 1000, generator=_gen(3)) * 4
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    torch.testing.assert_close(sampling_probs(logits, top_p=1.0), torch.softmax(logits, -1))


def test_top_p_sums_float64_logits_in_float64():
    # two tail tokens of probability 1e-11 each: only float64 resolves 1 - 2e-11 < p < 1 - 1e-11
    logits = torch.tensor([0.0, math.log(1e-11), math.log(1e-11)], dtype=torch.float64)
    p = 1 - 1.5e-11
    kept = set(torch.isfinite(top_p_filter(logits, p)).nonzero().flatten().tolist())
    assert kept == _minimal_nucleus(torch.softmax(logits, -1), p) == {0, 1}
