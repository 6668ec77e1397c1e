"""Preference optimization losses: DPO (Rafailov et al. 2023) and GRPO (Shao et al. 2024).

RLHF (Christiano et al. 2017; Ouyang et al. 2022) fits a reward model to human preferences
and maximises it with PPO under a KL penalty to the SFT model. DPO shows that the optimum
of that objective gives the policy an implicit reward r(x, y) = beta · log(pi(y|x) /
pi_ref(y|x)), so the Bradley-Terry likelihood of the preferences can be maximised directly:

    L_DPO = -log sigmoid(beta · [(log pi(y_w|x) - log pi_ref(y_w|x))
                                 - (log pi(y_l|x) - log pi_ref(y_l|x))]).

GRPO drops PPO's value model: each prompt gets a group of G sampled answers, and an
answer's advantage is its reward standardised within the group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean DPO loss and the implicit rewards of the chosen and rejected answers, each (B,).

    Inputs (B,): summed log-probabilities of the answers under the policy and the frozen
    reference (Rafailov et al. 2023, eq. 7). Returns (loss, chosen_rewards, rejected_rewards)
    with reward = beta · (log pi - log pi_ref), detached.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))  # (B,)
    return (
        losses.mean(),
        beta * chosen_logratios.detach(),
        beta * rejected_logratios.detach(),
    )


def grpo_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Group-relative advantages A_i = (r_i - mean(r)) / (std(r) + eps) over the last axis.

    rewards (..., G): one group of G answers per prompt (Shao et al. 2024, section 4.1.2;
    the standard deviation is the sample one, as in TRL).
    """
    if rewards.shape[-1] < 2:
        raise ValueError("a GRPO group needs at least 2 answers per prompt")
    mean = rewards.mean(dim=-1, keepdim=True)
    std = rewards.std(dim=-1, keepdim=True)
    return (rewards - mean) / (std + eps)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    beta: float = 0.04,
) -> torch.Tensor:
    """The GRPO objective, negated to be minimised (Shao et al. 2024, eq. 3).

    logps, old_logps, ref_logps (N, T): per-token log-probabilities of N sampled answers
    under the policy, the policy that sampled them and the reference; advantages (N,);
    mask (N, T) bool on answer tokens. Per token: the clipped ratio objective
    min(rho A, clip(rho, 1 - eps, 1 + eps) A) minus beta times the unbiased KL estimate
    pi_ref / pi - log(pi_ref / pi) - 1; averaged over each answer's tokens, then over answers.
    """
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)  # rho, (N, T)
    a = advantages[:, None]
    surrogate = torch.minimum(ratio * a, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * a)
    log_ref_ratio = ref_logps - logps
    kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1  # k3 estimator, >= 0
    per_token = -(surrogate - beta * kl)  # (N, T)
    per_answer = (per_token * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)
    return per_answer.mean()
