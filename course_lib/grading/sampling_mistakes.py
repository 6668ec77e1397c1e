"""Known mistakes in ps11's sampling, for the grader's misconception hints.

Each is `course_lib.kernels.sampling.sampling_probs` with one well-known error, called as
ps11's test cells call their references: `(logits, temperature)` for temperature and
`(logits, p, temperature=1.0)` for top-p (nucleus sampling, Holtzman et al. 2020). When a
learner's output on the case that failed equals one of these, the feedback names the mistake
(autograder.misconception).
"""

from __future__ import annotations

import torch

from course_lib.kernels.sampling import top_p_filter


def temperature_multiplied(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits * T): the temperature multiplied instead of divided."""
    return torch.softmax(logits.float() * temperature, dim=-1)


def temperature_after_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits) / T: the temperature applied to the probabilities (no longer sum to 1)."""
    return torch.softmax(logits.float(), dim=-1) / temperature


def _without_crossing(logits: torch.Tensor, p: float, temperature: float, keep_top: bool):
    z = logits.float() / temperature
    sorted_z, order = torch.sort(z, dim=-1, descending=True)
    drop_sorted = torch.softmax(sorted_z, dim=-1).cumsum(dim=-1) > p  # the crossing one too
    if keep_top:
        drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return torch.softmax(z.masked_fill(drop, float("-inf")), dim=-1)  # NaN if all dropped


def top_p_without_crossing_token(
    logits: torch.Tensor, p: float, temperature: float = 1.0
) -> torch.Tensor:
    """The nucleus without the token whose probability takes the sum past p (cumsum > p
    dropped): a row whose top token alone passes p keeps nothing (NaN)."""
    return _without_crossing(logits, p, temperature, keep_top=False)


def top_p_without_crossing_token_top_kept(
    logits: torch.Tensor, p: float, temperature: float = 1.0
) -> torch.Tensor:
    """As top_p_without_crossing_token, the top token always kept."""
    return _without_crossing(logits, p, temperature, keep_top=True)


def top_p_before_temperature(
    logits: torch.Tensor, p: float, temperature: float = 1.0
) -> torch.Tensor:
    """The nucleus chosen from softmax(logits), then the temperature applied to what is kept."""
    return torch.softmax(top_p_filter(logits.float(), p) / temperature, dim=-1)
