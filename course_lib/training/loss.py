"""Next-token cross-entropy written out with the log-sum-exp trick.

For logits z (…, V) and a target class y, the loss is -log softmax(z)_y =
logsumexp(z) - z_y. Subtracting max(z) before exponentiating keeps exp() finite for any
logits (the "log-sum-exp trick"; Goodfellow, Bengio & Courville 2016, §4.1). The mean is
over the positions whose target is not `ignore_index`, as `torch.nn.functional.cross_entropy`
does (CS336 assignment 1, §3.4 writes it the same way).
"""

from __future__ import annotations

import torch


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Mean -log p(target) over non-ignored positions: logits (…, V), targets (…) -> scalar.

    Differentiable (autograd flows through every op), computed in float32 or wider whatever
    the logits' dtype, equal to `F.cross_entropy(logits.flatten(0, -2), targets.flatten(),
    ignore_index=ignore_index)`. All positions ignored gives NaN (0 / 0), as PyTorch does.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} need targets of shape {tuple(logits.shape[:-1])}, "
            f"got {tuple(targets.shape)}"
        )
    z = logits.flatten(0, -2)  # (M, V)
    z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
    y = targets.flatten()  # (M,)
    keep = y != ignore_index  # (M,)
    m = z.max(dim=-1, keepdim=True).values.detach()  # (M, 1): any constant works, max is safe
    log_sum_exp = (z - m).exp().sum(dim=-1).log() + m.squeeze(-1)  # (M,)
    target_logit = z.gather(-1, torch.where(keep, y, 0).unsqueeze(-1)).squeeze(-1)  # (M,)
    nll = (log_sum_exp - target_logit) * keep  # (M,), zero where ignored
    return nll.sum() / keep.sum()
