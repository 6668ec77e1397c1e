"""The training loop: batches, forward, cross-entropy, backward, clip, AdamW, schedule.

nanoGPT's `train.py` (Karpathy 2023) and CS336 assignment 1 §5, with course_lib's own
pieces: `get_batch`, `cross_entropy`, `AdamW` with 1-D parameters exempt from weight decay,
`cosine_lr`, `clip_grad_norm`, gradient accumulation, optional bf16 autocast, periodic
validation, checkpoints that resume bit-identically, and a progress bar with the loss,
tokens/s and MFU against this machine's measured peak.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.hardware.mfu import mfu
from course_lib.training.adamw import AdamW, param_groups
from course_lib.training.batches import get_batch
from course_lib.training.checkpoint import load_checkpoint, save_checkpoint
from course_lib.training.clip import clip_grad_norm
from course_lib.training.loss import cross_entropy
from course_lib.training.schedule import cosine_lr
from course_lib.training.throughput import measured_peak_flops, model_flops_per_token

Tokens = np.ndarray | torch.Tensor


@dataclass
class TrainConfig:
    """Hyper-parameters of a run. Defaults: nanoGPT's recipe, shrunk for a CPU.

    The batch has batch_size * grad_accum sequences of seq_len tokens; lr warms up linearly
    from 0 over `warmup` steps and decays by a cosine to `min_lr` (default lr / 10) at the
    last step. `max_grad_norm=None` turns clipping off.
    """

    steps: int = 500
    batch_size: int = 16
    seq_len: int = 128
    grad_accum: int = 1
    lr: float = 3e-3
    min_lr: float | None = None
    warmup: int = 20
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float | None = 1.0
    eval_every: int = 50
    eval_batch_size: int = 16
    bf16: bool = False
    seed: int = 0
    time_budget_s: float | None = None
    checkpoint_path: str | os.PathLike | None = None
    checkpoint_every: int = 0
    progress: bool = True

    def lr_at(self, step: int) -> float:
        """The schedule of this run (`cosine_lr`)."""
        floor = self.lr / 10 if self.min_lr is None else self.min_lr
        return cosine_lr(step, self.lr, self.warmup, self.steps, floor)


@dataclass
class TrainLog:
    """Per-step training losses, lrs and gradient norms, periodic validation (step, loss),
    tokens/s and MFU of the run, wall-clock seconds."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    tokens_per_second: float = 0.0
    mfu: float = 0.0
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.losses)


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when asked (matmuls in bf16, reductions in fp32)."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    max_grad_norm: float | None = 1.0,
    bf16: bool = False,
) -> tuple[float, float]:
    """One optimizer step on the mean loss of equal-sized micro-batches; (loss, grad norm).

    Each micro-batch's loss is divided by their number before backward, so the summed
    gradients are those of the whole batch: accumulation equals the larger batch.
    """
    device = next(model.parameters()).device
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for x, y in micro_batches:
        with autocast(device, bf16):
            logits = model(x)  # (B, T, V)
        loss = cross_entropy(logits, y) / len(micro_batches)
        loss.backward()
        total += loss.item()
    # All of the model's gradients, in the model's order (as nanoGPT clips them): frozen
    # parameters have no gradient and are skipped.
    max_norm = float("inf") if max_grad_norm is None else max_grad_norm
    norm = clip_grad_norm(model.parameters(), max_norm)
    optimizer.step()
    return total, float(norm)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, tokens: Tokens, seq_len: int, batch_size: int = 16, seed: int = 0
) -> float:
    """Mean next-token cross-entropy (nats) of `model` on `batch_size` fixed windows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x, y = get_batch(tokens, batch_size, seq_len, device, torch.Generator().manual_seed(seed))
    loss = cross_entropy(model(x), y).item()
    model.train(was_training)
    return loss


def train(
    model: nn.Module,
    train_tokens: Tokens,
    val_tokens: Tokens | None = None,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainLog:
    """Train `model` (input_ids (B, T) -> logits (B, T, V)) in place; returns its TrainLog.

    With `checkpoint_path`, a checkpoint is written every `checkpoint_every` steps and at the
    end; `resume=True` continues from it. `stop_after=k` ends the run after step k as an
    interruption would (checkpoint written), to show that resuming changes nothing.
    """
    cfg = config or TrainConfig()
    if resume and cfg.checkpoint_path is None:
        raise ValueError("resume=True needs config.checkpoint_path")
    device = next(model.parameters()).device
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=1e-8)
    log, start_step = TrainLog(), 0
    if resume:
        state = load_checkpoint(cfg.checkpoint_path, model, optimizer, generator)
        start_step, log = state["step"], state["log"]
    end_step = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.seq_len
    flops = model_flops_per_token(model, cfg.seq_len)
    peak = measured_peak_flops(device, torch.bfloat16 if cfg.bf16 else torch.float32)
    model.train()
    train_seconds, start = 0.0, time.perf_counter()
    bar = tqdm(range(start_step, end_step), disable=not cfg.progress, desc="training", unit="step")
    for step in bar:
        t0 = time.perf_counter()
        lr = cfg.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = [
            get_batch(train_tokens, cfg.batch_size, cfg.seq_len, device, generator)
            for _ in range(cfg.grad_accum)
        ]
        loss, norm = train_step(model, optimizer, batches, cfg.max_grad_norm, cfg.bf16)
        train_seconds += time.perf_counter() - t0
        log.losses.append(loss)
        log.lrs.append(lr)
        log.grad_norms.append(norm)
        done = step + 1
        if val_tokens is not None and done % cfg.eval_every == 0:
            log.val_losses.append((done, evaluate_loss(model, val_tokens, cfg.seq_len)))
        tps = (done - start_step) * tokens_per_step / train_seconds
        log.tokens_per_second, log.mfu = tps, mfu(tps, flops, 1, peak)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:,.0f}", mfu=f"{log.mfu:.1%}")
        if cfg.checkpoint_path and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            save_checkpoint(cfg.checkpoint_path, model, optimizer, done, generator, log=log)
        if cfg.time_budget_s is not None and time.perf_counter() - start > cfg.time_budget_s:
            break
    bar.close()
    interrupted = stop_after is not None and log.steps < cfg.steps
    if (
        val_tokens is not None
        and not interrupted
        and (not log.val_losses or log.val_losses[-1][0] != log.steps)
    ):
        log.val_losses.append((log.steps, evaluate_loss(model, val_tokens, cfg.seq_len)))
    if cfg.checkpoint_path:
        save_checkpoint(cfg.checkpoint_path, model, optimizer, log.steps, generator, log=log)
    log.seconds += time.perf_counter() - start
    model.eval()
    return log
