"""Known mistakes in ps03's AdamW step, for the grader's misconception hints.

Called as ps03's test calls `training_cases.reference_adamw_step`:
`(param, grad, m, v, t, lr, betas, eps, weight_decay) -> (param, m, v)`. When a learner's
output on the case that failed equals one of these, the feedback names the mistake
(autograder.misconception).
"""

from __future__ import annotations

import torch

from course_lib.grading.training_cases import torch_optimizer_step


def adam_l2_for_adamw(param, grad, m, v, t, lr, betas, eps, weight_decay):
    """Adam with L2 regularisation (weight_decay * param added to the gradient, so it passes
    through m and v) instead of AdamW's decoupled decay (Loshchilov & Hutter 2019)."""
    return torch_optimizer_step(torch.optim.Adam, param, grad, m, v, t, lr, betas, eps,
                                weight_decay)  # fmt: skip


def adamw_without_bias_correction(param, grad, m, v, t, lr, betas, eps, weight_decay):
    """AdamW with m and v used as they are, without Adam's 1 / (1 - beta^t) bias correction
    (Kingma & Ba 2015, sec. 3)."""
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param * (1 - lr * weight_decay) - lr * m / (v.sqrt() + eps), m, v
