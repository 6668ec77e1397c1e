"""Supervised fine-tuning: loss masks, masked next-token loss, sequence log-probabilities, a step.

A batch is token ids (B, T) with a boolean loss mask (B, T) that is True where a token is a
target (an answer token). Position t's logits predict token t + 1, so the loss pairs
logits[:, :-1] with input_ids[:, 1:] and mask[:, 1:]. Averaging over target tokens only is
the masked loss of InstructGPT's SFT stage (Ouyang et al. 2022) and of Hugging Face's
`labels = -100` convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IGNORE_INDEX = -100  # transformers' and PyTorch's default ignore_index


def completion_mask(
    prompt_lengths: torch.Tensor, lengths: torch.Tensor, seq_len: int
) -> torch.Tensor:
    """(B, T) bool, True for prompt_length <= t < length: the answer tokens of each row.

    prompt_lengths, lengths (B,) int: tokens of the prompt and of the whole (unpadded) row.
    """
    if bool((prompt_lengths > lengths).any()) or bool((lengths > seq_len).any()):
        raise ValueError("need prompt_length <= length <= seq_len in every row")
    t = torch.arange(seq_len, device=lengths.device)  # (T,)
    return (t >= prompt_lengths[:, None]) & (t < lengths[:, None])


def pad_batch(
    sequences: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D id and mask tensors to (B, T_max); padding is never a target."""
    if len(sequences) != len(masks) or not sequences:
        raise ValueError("give one mask per sequence, and at least one sequence")
    T = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), T, dtype=torch.bool)
    for i, (s, m) in enumerate(zip(sequences, masks, strict=True)):
        ids[i, : len(s)], mask[i, : len(m)] = s, m
    return ids, mask


def labels_from_mask(input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Hugging Face labels (B, T): the ids where the mask is True, IGNORE_INDEX elsewhere."""
    return input_ids.masked_fill(~loss_mask, IGNORE_INDEX)


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(token t+1 | tokens <= t): logits (B, T, V), ids (B, T) -> (B, T-1), at least fp32."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logp = torch.log_softmax(logits[:, :-1].to(dtype), dim=-1)  # (B, T-1, V)
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def masked_lm_loss(
    logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor
) -> torch.Tensor:
    """Mean next-token cross-entropy over target tokens: logits (B, T, V), ids, mask (B, T)."""
    targets = loss_mask[:, 1:]  # (B, T-1): is token t+1 a target?
    n = targets.sum()
    if n == 0:
        raise ValueError("the loss mask selects no target token (after the first position)")
    return -(token_logprobs(logits, input_ids) * targets).sum() / n


def sequence_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor
) -> torch.Tensor:
    """log pi(y | x) of each row: the sum of the target tokens' log-probabilities, (B,)."""
    return (token_logprobs(logits, input_ids) * loss_mask[:, 1:]).sum(dim=-1)


def sft_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    input_ids: torch.Tensor,
    loss_mask: torch.Tensor,
    *,
    max_grad_norm: float | None = 1.0,
) -> float:
    """One supervised fine-tuning step: masked loss, backward, clip, optimizer step.

    `model(input_ids) -> logits (B, T, V)`; returns the loss before the update.
    """
    model.train()
    loss = masked_lm_loss(model(input_ids), input_ids, loss_mask)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return loss.item()
