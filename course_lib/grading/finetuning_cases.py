"""Seeded inputs and references for the post-training exercises (ps12).

Each `*_cases(seed, n)` returns edge cases followed by `n` random ones for `check_function`;
each `reference_*` is the course_lib.finetuning function called with the exercise's
signature. Models that cross to a learner's function are plain `torch.nn` modules.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from course_lib.finetuning import LoRALinear, completion_mask, dpo_loss, masked_lm_loss, sft_step
from course_lib.grading.checks import Case, random_cases


def _randn(rng: np.random.Generator, *shape: int, dtype=torch.float64, scale=1.0) -> torch.Tensor:
    return torch.as_tensor(scale * rng.standard_normal(shape)).to(dtype)


# ---------------------------------------------------------------- the loss mask


def reference_answer_mask(
    prompt_lengths: torch.Tensor, lengths: torch.Tensor, seq_len: int
) -> torch.Tensor:
    """(B, T) bool: True for prompt_length <= t < length."""
    return completion_mask(prompt_lengths, lengths, seq_len)


def _lengths(rng: np.random.Generator, b: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = rng.integers(1, seq_len + 1, b)
    prompts = np.array([rng.integers(0, n + 1) for n in lengths])
    return torch.as_tensor(prompts, dtype=torch.long), torch.as_tensor(lengths, dtype=torch.long)


def answer_mask_cases(seed: int, n: int) -> list[Case]:
    """`(prompt_lengths (B,), lengths (B,), seq_len)`: no prompt, no answer, no padding."""
    edge = [
        Case((torch.tensor([2]), torch.tensor([5]), 5), label="one row, no padding"),
        Case((torch.tensor([0, 3]), torch.tensor([3, 3]), 4), label="no prompt; no answer"),
    ]

    def make(rng: np.random.Generator) -> Case:
        b, t = int(rng.integers(1, 6)), int(rng.integers(1, 20))
        return Case((*_lengths(rng, b, t), t))

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- the masked loss


def reference_masked_loss(
    logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor
) -> torch.Tensor:
    """Mean next-token cross-entropy over the target tokens (logits[:, t] predicts ids[:, t+1])."""
    return masked_lm_loss(logits, input_ids, loss_mask).to(logits.dtype)


def masked_loss_cases(seed: int, n: int) -> list[Case]:
    """`(logits (B, T, V), input_ids (B, T), loss_mask (B, T))`, float64 logits."""
    edge = [
        Case(
            (
                torch.zeros(1, 3, 4, dtype=torch.float64),
                torch.tensor([[0, 1, 2]]),
                torch.tensor([[False, True, True]]),
            ),
            label="uniform logits: the loss is log V",
        ),  # fmt: skip
    ]

    def make(rng: np.random.Generator) -> Case:
        b, t, v = int(rng.integers(1, 5)), int(rng.integers(2, 16)), int(rng.integers(2, 40))
        prompts, lengths = _lengths(rng, b, t)
        lengths[0], prompts[0] = t, min(int(prompts[0]), t - 1)  # at least one target
        mask = completion_mask(prompts, lengths, t)
        ids = torch.as_tensor(rng.integers(0, v, (b, t)), dtype=torch.long)
        return Case((_randn(rng, b, t, v, scale=float(rng.uniform(0.5, 4))), ids, mask))

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- LoRA


def lora_run(make_layer, base: nn.Linear, lora_A, lora_B, alpha: float, x: torch.Tensor):
    """Build `make_layer(base, r, alpha, lora_A=..., lora_B=...)` (the learner's class or the
    reference) and record forward, merge, unmerge.

    Returns (y, merged weight, y after merge, weight after unmerge, y after unmerge).
    """
    layer = make_layer(base, lora_A.shape[0], alpha, lora_A=lora_A, lora_B=lora_B)
    y = layer(x)
    layer.merge()
    w_merged, y_merged = layer.base.weight.detach().clone(), layer(x)
    layer.unmerge()
    w_back, y_back = layer.base.weight.detach().clone(), layer(x)
    return tuple(t.detach() for t in (y, w_merged, y_merged, w_back, y_back))


def _reference_layer(base, r, alpha, lora_A=None, lora_B=None) -> LoRALinear:
    """course_lib's LoRALinear with given adapters (the exercise's constructor)."""
    layer = LoRALinear(base, r, alpha)
    with torch.no_grad():
        if lora_A is not None:
            layer.lora_A.copy_(lora_A)
        if lora_B is not None:
            layer.lora_B.copy_(lora_B)
    return layer


def reference_lora_run(base, lora_A, lora_B, alpha, x):
    """`lora_run` with course_lib's LoRALinear."""
    return lora_run(_reference_layer, copy.deepcopy(base), lora_A, lora_B, alpha, x)


def lora_cases(seed: int, n: int) -> list[Case]:
    """`(base nn.Linear, lora_A (r, in), lora_B (out, r), alpha, x (..., in))`, float64."""

    def make(rng: np.random.Generator) -> Case:
        d_in, d_out, r = (int(s) for s in rng.integers(1, 12, 3))
        # Always with a bias: the grader's wire format drops a None bias of nn.Linear.
        torch.manual_seed(int(rng.integers(2**31)))
        base = nn.Linear(d_in, d_out, dtype=torch.float64)
        lead = tuple(int(s) for s in rng.integers(1, 4, int(rng.integers(1, 3))))
        alpha = float(rng.choice([1.0, 8.0, 16.0, 32.0]))
        return Case(
            (base, _randn(rng, r, d_in), _randn(rng, d_out, r), alpha, _randn(rng, *lead, d_in)),
            label=f"r={r}, alpha={alpha}",
        )

    return random_cases(seed, n, make)


# ---------------------------------------------------------------- DPO


def reference_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """Mean DPO loss (Rafailov et al. 2023, eq. 7)."""
    return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)[0]


def dpo_cases(seed: int, n: int) -> list[Case]:
    """`(policy_chosen, policy_rejected, ref_chosen, ref_rejected (B,), beta)`, float64."""
    zeros = torch.zeros(2, dtype=torch.float64)
    edge = [
        Case((zeros, zeros, zeros, zeros, 0.1), label="policy = reference: log 2"),
        Case(
            (
                torch.tensor([-5.0]),
                torch.tensor([-9.0]),
                torch.tensor([-5.0]),
                torch.tensor([-5.0]),
                1.0,
            ),
            label="large margin",
        ),  # fmt: skip
    ]

    def make(rng: np.random.Generator) -> Case:
        b = int(rng.integers(1, 9))
        logps = [-torch.as_tensor(rng.uniform(1, 60, b)) for _ in range(4)]
        return Case((*logps, float(rng.choice([0.01, 0.1, 0.5, 1.0]))))

    return random_cases(seed, n, make, edge_cases=edge)


# ---------------------------------------------------------------- one SFT step


def tiny_lm(vocab: int, d: int, seed: int) -> nn.Module:
    """A bigram language model: embedding then a linear output layer, float64."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(vocab, d), nn.Linear(d, vocab)).double()


def reference_sft_step(model: nn.Module, input_ids, loss_mask, lr: float):
    """One SGD step on the masked loss: returns (loss before the step, the updated model)."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = sft_step(model, optimizer, input_ids, loss_mask, max_grad_norm=None)
    return loss, model


def step_outcome(step_fn):
    """Wrap an SFT step: its loss and every parameter after the step, to compare."""

    def run(model, input_ids, loss_mask, lr):
        loss, updated = step_fn(model, input_ids, loss_mask, lr)
        return float(loss), [p.detach() for p in updated.parameters()]

    run.__name__ = getattr(step_fn, "__name__", "sft_step")
    return run


def sft_step_cases(seed: int, n: int) -> list[Case]:
    """`(model, input_ids (B, T), loss_mask (B, T), lr)` with a tiny bigram model."""

    def make(rng: np.random.Generator) -> Case:
        v, d = int(rng.integers(3, 30)), int(rng.integers(2, 9))
        b, t = int(rng.integers(1, 4)), int(rng.integers(2, 12))
        prompts, lengths = _lengths(rng, b, t)
        lengths[0], prompts[0] = t, min(int(prompts[0]), t - 1)
        ids = torch.as_tensor(rng.integers(0, v, (b, t)), dtype=torch.long)
        model = tiny_lm(v, d, int(rng.integers(2**31)))
        lr = float(rng.choice([0.01, 0.1, 1.0]))
        return Case((model, ids, completion_mask(prompts, lengths, t), lr), label=f"lr={lr}")

    return random_cases(seed, n, make)
