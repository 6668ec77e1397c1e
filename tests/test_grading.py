"""course_lib.grading: passes on equal outputs, fails with a message that locates the error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from course_lib.grading import Case, check_function, check_value, compare, random_cases
from course_lib.grading import embedding_cases as ec


def _loop_dot(a, b):
    """Dot product of vectors, or row by row of batches, by an explicit loop."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim == 1:
        return sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    return np.array([_loop_dot(ra, rb) for ra, rb in zip(a, b, strict=True)])  # (n,)


def _failure(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


CASES = [Case((np.arange(6.0).reshape(2, 3), np.ones((2, 3))), label="2x3")]


def test_passes_on_an_independent_equal_implementation():
    cases = ec.batch_pairs(seed=0, n=10)
    n = check_function(
        lambda a, b: np.sum(np.multiply(a, b), axis=-1), _loop_dot, cases, atol=1e-9, rtol=1e-9
    )
    assert n == len(cases) == 13


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_tolerance_boundary(scale):
    """An error of half the tolerance passes; twice the tolerance fails at that element."""
    atol, rtol = 1e-6, 1e-4
    expected = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
    got = expected.copy()
    got[1, 2] += scale * (atol + rtol * 6.0)
    if scale < 1:
        check_value(got, expected, atol=atol, rtol=rtol)
        return
    message = _failure(check_value, got, expected, atol=atol, rtol=rtol, name="out")
    assert message.startswith("VALUE mismatch at out[1, 2]")
    assert "expected -6.0" in message and "1 of 6 elements differ" in message


def test_value_mismatch_names_case_inputs_and_element():
    def student(a, b):
        out = _loop_dot(a, b)
        out[1] += 1.0
        return out

    message = _failure(check_function, student, _loop_dot, CASES, atol=1e-9, rtol=1e-9)
    assert "student failed on case 1 of 1 (2x3)" in message
    assert "a = array(shape=(2, 3), dtype=float64)" in message
    assert "VALUE mismatch at output[1]" in message
    # row 1 of arange(6) is [3, 4, 5]; its dot with ones is 12
    assert "expected 12.0, got 13.0" in message
    assert "SHAPE" not in message


def test_shape_mismatch_is_reported_apart_from_values():
    message = _failure(
        check_function, lambda a, b: _loop_dot(a, b)[:, None], _loop_dot, CASES, atol=1, rtol=1
    )
    assert "SHAPE mismatch" in message and "expected shape (2,), got shape (2, 1)" in message
    assert "VALUE" not in message
    message = _failure(check_value, np.array([20.0]), 20.0, atol=0, rtol=0)
    assert "SHAPE mismatch" in message and "a single number, shape ()" in message


def test_a_raising_student_function_names_exception_and_case():
    def student(a, b):
        raise ZeroDivisionError("division by zero")

    cases = [Case(([1.0], [2.0]), label="first"), Case(([0.0], [0.0]), label="zero vector")]
    message = _failure(check_function, student, _loop_dot, cases[1:], atol=0, rtol=0)
    assert "case 1 of 1 (zero vector): it raised ZeroDivisionError: division by zero" in message

    def stub(a, b):
        raise NotImplementedError()

    message = _failure(check_function, stub, _loop_dot, cases, atol=0, rtol=0)
    assert "case 1 of 2 (first): it raised NotImplementedError" in message
    assert "replace `raise NotImplementedError()`" in message


def test_later_case_is_located():
    cases = ec.vector_pairs(seed=3, n=4)
    target = 7  # fail only on this case

    def student(a, b):
        out = float(np.dot(np.asarray(a, float), np.asarray(b, float)))
        return out + 1.0 if np.array_equal(a, cases[target - 1].args[0]) else out

    message = _failure(check_function, student, _loop_dot, cases, atol=1e-9, rtol=1e-9)
    assert f"case {target} of {len(cases)}" in message


def test_torch_tensors():
    expected = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    got = expected.clone()
    got[2, 1] = 100.0
    message = _failure(check_value, got, expected, atol=1e-5, rtol=1e-5)
    assert "VALUE mismatch at output[2, 1]: expected 9.0, got 100.0" in message
    message = _failure(check_value, expected.numpy(), expected, atol=1, rtol=1)
    assert "TYPE mismatch" in message and "expected a torch.Tensor" in message
    message = _failure(check_value, expected[:2], expected, atol=1, rtol=1)
    assert "expected shape (3, 4), got shape (2, 4)" in message
    bf16 = expected.to(torch.bfloat16)
    check_value(bf16, bf16.clone(), atol=0, rtol=0)
    assert "tensor(shape=(3, 4), dtype=torch.bfloat16" in _failure(
        check_function,
        lambda x: x,
        lambda x: x + 1,
        [Case((bf16,))],
        atol=0,
        rtol=0,
    )


def test_tuples_ints_and_strings():
    expected = (np.array([2, 0, 1]), np.array([0.9, 0.5, 0.1]))
    check_value((np.array([2.0, 0.0, 1.0]), [0.9, 0.5, 0.1]), expected, atol=1e-12, rtol=0)
    message = _failure(check_value, (np.array([2, 1, 0]), expected[1]), expected, atol=10, rtol=10)
    assert "VALUE mismatch at output[0][1]: expected 0, got 1" in message  # integers are exact
    message = _failure(check_value, (expected[0],), expected, atol=0, rtol=0)
    assert "SHAPE mismatch" in message and "2 values, got 1" in message
    message = _failure(check_value, "king", "queen", atol=0, rtol=0)
    assert "expected 'queen', got 'king'" in message
    check_value(np.str_("queen"), "queen", atol=0, rtol=0)


def test_nan_and_none():
    check_value(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), atol=0, rtol=0)
    message = _failure(check_value, np.float64("nan"), 0.0, atol=1e-9, rtol=1e-9)
    assert "expected 0.0, got nan" in message and "0/0" in message
    message = _failure(check_value, None, 1.5, atol=0, rtol=0)
    assert "TYPE mismatch" in message and "forget to `return`" in message


def test_compare_returns_none_or_the_kind():
    assert compare(np.ones(3), np.ones(3), atol=0, rtol=0) is None
    assert compare(np.ones(2), np.ones(3), atol=0, rtol=0).kind == "shape"
    assert compare(np.zeros(3), np.ones(3), atol=0, rtol=0).kind == "value"
    assert compare("x", np.ones(3), atol=0, rtol=0).kind == "type"


def test_inputs_are_copied_for_each_function():
    """A student that scribbles over its inputs cannot change what the reference sees."""
    case = Case((np.array([1.0, 2.0]), np.array([3.0, 4.0])))

    def vandal(a, b):
        out = float(a @ b)
        a[:] = 0.0
        return out

    check_function(vandal, _loop_dot, [case, case], atol=0, rtol=0)
    assert case.args[0].tolist() == [1.0, 2.0]


def test_random_cases_are_seeded_and_edge_cases_come_first():
    def make(rng):
        return (rng.standard_normal(3),)

    first, again = (random_cases(7, 3, make, edge_cases=[(np.zeros(3),)]) for _ in range(2))
    other = random_cases(8, 3, make)
    assert np.array_equal(first[0].args[0], np.zeros(3))
    assert all(np.array_equal(x.args[0], y.args[0]) for x, y in zip(first, again, strict=True))
    assert not np.array_equal(first[1].args[0], other[0].args[0])
    assert first[1].label == "random case #1, seed 7"


def test_embedding_cases_cover_the_edge_cases():
    labels = " ".join(c.label for c in ec.vector_pairs(0, 0) + ec.batch_pairs(0, 0))
    assert "zero vector" in labels and "one-row batch" in labels and "zero rows" in labels
    top_k = ec.top_k_cases(0, 30)
    assert any(k > len(corpus) for _, corpus, k in (c.args for c in top_k))
    assert any(len(corpus) == 1 for _, corpus, k in (c.args for c in top_k))


def _loop_cosine(u, v) -> float:
    u, v = np.asarray(u, float), np.asarray(v, float)
    nu, nv = np.sqrt(sum(x * x for x in u)), np.sqrt(sum(x * x for x in v))
    return (
        0.0
        if nu == 0 or nv == 0
        else float(sum(x * y for x, y in zip(u, v, strict=True)) / (nu * nv))
    )


def test_top_k_cases_have_no_near_ties():
    for case in ec.top_k_cases(seed=11, n=40):
        query, corpus, _ = case.args
        scores = sorted(_loop_cosine(query, row) for row in corpus)
        assert all(b - a > 1e-7 for a, b in itertools.pairwise(scores)), case.label


def test_analogy_cases_have_one_answer_and_exclusion_matters():
    """One clear winner among non-query words; in some cases a query word would win otherwise."""
    query_word_wins = 0
    for case in ec.analogy_cases(seed=12, n=40):
        a, b, c, vocab = case.args
        target = vocab[b] - vocab[a] + vocab[c]
        scores = {w: _loop_cosine(target, v) for w, v in vocab.items()}
        ranked = sorted((s for w, s in scores.items() if w not in (a, b, c)), reverse=True)
        assert ranked[0] - ranked[1] > 1e-7, case.label
        query_word_wins += max(scores, key=scores.get) in (a, b, c)
    assert query_word_wins >= 10


def test_arrays_of_words_compare_exactly():
    expected = np.array(["queen", "worse"])
    check_value(["queen", "worse"], expected, atol=0, rtol=0)
    message = _failure(check_value, ["queen", "bad"], expected, atol=1, rtol=1)
    assert "VALUE mismatch at output[1]: expected 'worse', got 'bad'" in message


def test_peak_bytes_counts_new_tensors_not_views_of_inputs():
    import torch

    from course_lib.grading.memory import peak_bytes

    k = torch.randn(4096, 16)
    _, views = peak_bytes(lambda x: [x[i : i + 64].T for i in range(0, 4096, 64)], k)
    assert views == 0  # slices and transposes allocate nothing
    q = torch.randn(64, 16)
    _, full = peak_bytes(lambda a, b: torch.softmax(a @ b.T, dim=-1), q, k)
    assert full >= 2 * 64 * 4096 * 4  # the scores and their softmax, float32
    _, tile = peak_bytes(lambda a, b: (a @ b[:128].T).exp(), q, k)
    assert tile <= 2 * 64 * 128 * 4
