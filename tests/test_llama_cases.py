"""The capstone's references (course_lib.grading.llama_cases): they are SmolLM2, their KV
cache changes nothing, and the cut-down real-weight case keeps SmolLM2's own logits; and
ps11's capstone tests, run in-process, pass the solution and fail every known mistake."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
from assignments import CAPSTONE_MISTAKES

from course_lib.grading import check_function
from course_lib.grading import llama_cases as L
from course_lib.models import from_gguf, smollm2


def test_references_compute_smollm2(one_thread) -> None:
    """All 30 layers through reference_llama_forward give from_gguf's logits."""
    model, tokenizer = from_gguf(smollm2(), device="cpu")
    weights, config, _ = L.load_smollm2()
    ids = torch.tensor([tokenizer.encode(L.PROMPT)])  # (1, T)
    with torch.no_grad():
        expected = model(ids)
    logits, cache = L.reference_llama_forward(ids, weights, config)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert len(cache) == model.cfg.n_layers
    assert cache[0][0].shape == (1, config["n_kv_heads"], ids.shape[1], config["head_dim"])
    ours = L.weights_of(model)  # the same tensors, read from from_gguf's model
    assert torch.equal(ours["embed"], weights["embed"]) and torch.equal(
        ours["norm"], weights["norm"]
    )
    for i in (0, 29):
        assert ours["layers"][i].keys() == weights["layers"][i].keys()
        for key, w in weights["layers"][i].items():
            assert torch.equal(ours["layers"][i][key], w), (i, key)


def test_block_reference_with_cache_equals_one_pass(one_thread) -> None:
    for case in L.block_cases(0, 12, real=False):
        x, layer, cos, sin, config, _ = case.args
        if x.shape[1] < 2:
            continue
        full, (k, v) = L.reference_llama_block(x, layer, cos, sin, config)
        _, past = L.reference_llama_block(x[:, :-1], layer, cos[:-1], sin[:-1], config)
        last, (k2, v2) = L.reference_llama_block(x[:, -1:], layer, cos[-1:], sin[-1:], config, past)
        torch.testing.assert_close(last, full[:, -1:], msg=case.label)
        torch.testing.assert_close((k2, v2), (k, v), msg=case.label)


def test_forward_reference_with_cache_equals_one_pass(one_thread) -> None:
    reference = L.reference_llama_forward
    n = check_function(
        L.decoded_with_cache(reference),
        L.decoded_in_one_pass(reference),
        L.cache_cases(0, 12),
        atol=1e-5,
        rtol=1e-5,
    )
    assert n == 12


def test_forward_reference_sees_the_cache_positions(one_thread) -> None:
    """A cache that restarts RoPE at position 0 must change the logits (the test can fail)."""
    case = L.cache_cases(1, 1)[0]
    tokens, weights, config, n_prompt = case.args

    def restarting(tokens, weights, config, cache=None):
        return L.reference_llama_forward(tokens, weights, config, None)[0], cache or []

    got = L.decoded_with_cache(restarting)(tokens[:, :2], weights, config, 1)
    expected = L.decoded_in_one_pass(L.reference_llama_forward)(tokens[:, :2], weights, config, 1)
    assert not torch.allclose(got, expected)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_cut_vocabulary_keeps_smollm2_rows(one_thread, n_layers: int) -> None:
    tokens, cut, config = L.real_forward_case(n_layers, 256).args
    full = L.smollm2_weights(n_layers)
    direction = torch.randn(full["embed"].shape[1], generator=torch.Generator().manual_seed(0))
    gap = ((cut["embed"] @ direction)[:, None] - (full["embed"] @ direction)[None]).abs()
    rows = gap.argmin(dim=1)  # (256,) the SmolLM2 row each cut row projects like
    assert torch.equal(full["embed"][rows], cut["embed"])  # every cut row is SmolLM2's
    ids = rows[tokens]  # the prompt in SmolLM2's own numbering
    assert L.smollm2_tokenizer().decode(ids[0]) == L.PROMPT
    got = L.reference_llama_forward(tokens, cut, config)[0]
    expected = L.reference_llama_forward(ids, full, config)[0][..., rows]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


SOURCE = Path(__file__).resolve().parents[1] / "solutions" / "ps11" / "ps11.ipynb"
CAPSTONE_TESTS = ("test_ex8_block", "test_ex9_forward", "test_ex9_cache")


def failed_capstone_tests(nb: nbformat.NotebookNode) -> set[str]:
    """Run the notebook's set-up, capstone solution and test cells here; the tests that fail."""
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    ns: dict = {"__name__": "__main__"}
    for grade_id in ("setup", "capstone_setup", "ex8_block", "ex9_forward"):
        exec(compile(cells[grade_id], grade_id, "exec"), ns)
    failed = set()
    for grade_id in CAPSTONE_TESTS:
        try:
            exec(compile(cells[grade_id], grade_id, "exec"), ns)
        except AssertionError:
            failed.add(grade_id)
    return failed


def test_capstone_solution_passes(one_thread) -> None:
    assert failed_capstone_tests(nbformat.read(SOURCE, as_version=4)) == set()


@pytest.mark.parametrize("mistake", CAPSTONE_MISTAKES, ids=lambda m: m.name)
def test_capstone_mistake_loses_points(one_thread, mistake) -> None:
    nb = nbformat.read(SOURCE, as_version=4)
    mistake.edit({SOURCE.name: nb})
    assert failed_capstone_tests(nb), f"{mistake.name} passes every capstone test"
