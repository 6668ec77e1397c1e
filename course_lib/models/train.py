"""`train_lm`: the capstone's training call, a thin front to `course_lib.training.train`.

The recipe is nanoGPT's (Karpathy 2023), shrunk so that a Transformer of a few hundred
thousand parameters learns something in a minute on a CPU: next-token cross-entropy on
uniformly drawn windows (`get_batch`), AdamW with betas (0.9, 0.95) and weight decay on
matrices and embeddings only (norm gains and biases are exempt), a linear warm-up from 0
then a cosine decay to lr / 10, and gradient clipping at global norm 1. What it does not
do: nanoGPT's 1/sqrt(2L) scaling of the residual projections' init belongs to the model;
`course_lib.models.gpt.GPT` does it, `Transformer` keeps GPT-2's plain N(0, 0.02).
Training stops after `steps` steps or `time_budget_s` seconds, whichever comes first.
"""

from __future__ import annotations

import torch

from course_lib.training.loop import TrainConfig, TrainLog, evaluate_loss, train

__all__ = ["TrainLog", "evaluate_loss", "train_lm"]


def train_lm(
    model: torch.nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor | None = None,
    *,
    steps: int = 500,
    batch_size: int = 16,
    seq_len: int = 128,
    lr: float = 3e-3,
    warmup: int = 20,
    weight_decay: float = 0.1,
    time_budget_s: float | None = None,
    eval_every: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> TrainLog:
    """Train `model` (input_ids (B, T) -> logits (B, T, V)) in place; returns its TrainLog."""
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        warmup=warmup,
        weight_decay=weight_decay,
        time_budget_s=time_budget_s,
        eval_every=eval_every,
        seed=seed,
        progress=progress,
    )
    return train(model, train_ids, val_ids, config)
