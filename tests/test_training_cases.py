"""ps03's fixed pieces: the threshold of the final exercise has a margin over the reference
run, and the references agree with course_lib.training."""

from __future__ import annotations

import torch

from course_lib.grading import training_cases as cases
from course_lib.training import AdamW, clip_grad_norm, cross_entropy


def test_threshold_has_a_margin_over_the_reference_run(one_thread) -> None:
    _, val = cases.corpus_split()
    loss = cases.validation_loss(cases.reference_run(seed=0), val)
    assert loss < cases.THRESHOLD - 0.1
    assert cases.validation_loss(cases.tiny_model(0), val) > cases.THRESHOLD + 2  # untrained


def test_pytorch_references_equal_course_lib() -> None:
    for case in cases.cross_entropy_cases(seed=0, n=5):
        torch.testing.assert_close(
            cross_entropy(*case.args), cases.reference_cross_entropy(*case.args)
        )
    for case in cases.adamw_cases(seed=0, n=5):
        param, grad, m, v, t, lr, betas, eps, wd = case.args
        p = torch.nn.Parameter(param.clone())
        p.grad = grad.clone()
        opt = AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
        opt.state[p] = {"step": t - 1, "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
        opt.step()
        torch.testing.assert_close(p.detach(), cases.reference_adamw_step(*case.args)[0])
    for case in cases.clip_cases(seed=0, n=5):
        grads, max_norm = case.args
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        norm = clip_grad_norm(params, max_norm)
        expected, expected_norm = cases.reference_clip(grads, max_norm)
        torch.testing.assert_close(float(norm), expected_norm)
        for p, e in zip(params, expected, strict=True):
            torch.testing.assert_close(p.grad, e)
