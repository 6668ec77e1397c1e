"""A small training loop for a causal language model on a token stream, with a progress bar.

Next-token cross-entropy on random windows, AdamW (Loshchilov & Hutter 2019) with linear
warm-up and cosine decay, gradient clipping at 1: the nanoGPT recipe, shrunk so that a
Transformer of a few hundred thousand parameters learns something in a minute on a CPU.
Training stops after `steps` steps or `time_budget_s` seconds, whichever comes first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@dataclass
class TrainLog:
    """Per-step training losses, periodic validation losses (step, loss), wall-clock seconds."""

    losses: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.losses)


def random_windows(
    ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs x (B, T) and next-token targets y (B, T) from random windows of ids (N,)."""
    starts = torch.randint(0, len(ids) - seq_len - 1, (batch_size,), generator=generator)
    window = torch.stack([ids[s : s + seq_len + 1] for s in starts.tolist()])  # (B, T+1)
    return window[:, :-1], window[:, 1:]


@torch.no_grad()
def evaluate_loss(
    model: torch.nn.Module, ids: torch.Tensor, seq_len: int, batch_size: int = 16, seed: int = 0
) -> float:
    """Mean next-token cross-entropy (nats) of `model` on `batch_size` fixed windows of ids."""
    was_training = model.training
    model.eval()
    x, y = random_windows(ids, batch_size, seq_len, torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    logits = model(x.to(device))  # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten()).item()
    model.train(was_training)
    return loss


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for `warmup` steps, then cosine decay to lr / 10 at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


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
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    log = TrainLog()
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(steps), disable=not progress, desc="training", unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        x, y = random_windows(train_ids, batch_size, seq_len, generator)
        logits = model(x.to(device))  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        log.losses.append(loss.item())
        if val_ids is not None and (step + 1) % eval_every == 0:
            log.val_losses.append((step + 1, evaluate_loss(model, val_ids, seq_len)))
        bar.set_postfix(loss=f"{log.losses[-1]:.3f}")
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            break
    bar.close()
    if val_ids is not None and (not log.val_losses or log.val_losses[-1][0] != log.steps):
        log.val_losses.append((log.steps, evaluate_loss(model, val_ids, seq_len)))
    log.seconds = time.perf_counter() - start
    model.eval()
    return log
