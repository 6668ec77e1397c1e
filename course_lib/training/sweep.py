"""A scaling sweep: train a grid of tiny GPTs (widths x token budgets) and measure each.

The measurements behind a scaling law, done the way Hoffmann et al. (2022, §3) insist on:
every (N, D) point is its own run with its own full learning-rate schedule (warm-up, then a
cosine decay that ends at the run's last step), not an early checkpoint of a longer run
(Kaplan et al. 2020 read D off one schedule, which overstates the loss at small D). N is
the number of *non-embedding* parameters, as in Kaplan et al.; D = steps x batch x context.
The loss is measured on held-out tokens, on the same windows for every run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch

from course_lib.models.gpt import GPT, GPTConfig
from course_lib.training.loop import Tokens, TrainConfig, evaluate_loss, train


@dataclass(frozen=True)
class SweepRun:
    """One point of a sweep: width, non-embedding parameters N, tokens D, validation loss."""

    width: int
    n_params: int
    tokens: int
    val_loss: float
    seconds: float


def non_embedding_params(model: GPT) -> int:
    """Parameters outside the token and position embeddings (Kaplan et al.'s N).

    The tied output projection is the token embedding, so it is not counted either.
    """
    return sum(
        p.numel() for name, p in model.named_parameters() if not name.startswith(("wte", "wpe"))
    )


def scaling_sweep(
    train_tokens: Tokens,
    val_tokens: Tokens,
    widths: Iterable[int],
    steps: Iterable[int],
    config: TrainConfig,
    *,
    n_layer: int = 2,
    head_size: int = 16,
    vocab_size: int = 256,
    warmup_fraction: float = 0.1,
    eval_batch_size: int = 64,
) -> list[SweepRun]:
    """Train one GPT per (width, steps) pair, each from the same seed with its own schedule.

    `config` fixes the recipe (batch, context, lr, ...); its `steps` and `warmup` are
    replaced per run (warm-up = `warmup_fraction` of the run). Widths have
    max(1, width // head_size) heads. Returns the runs in the order of the loops.
    """
    steps = list(steps)
    runs = []
    for width in widths:
        gpt_config = GPTConfig(
            vocab_size=vocab_size,
            block_size=config.seq_len,
            n_layer=n_layer,
            n_head=max(1, width // head_size),
            n_embd=width,
        )
        for n_steps in steps:
            torch.manual_seed(config.seed)
            model = GPT(gpt_config)
            run_config = replace(
                config, steps=n_steps, warmup=round(warmup_fraction * n_steps), progress=False
            )
            start = time.perf_counter()
            train(model, train_tokens, config=run_config)
            loss = evaluate_loss(model, val_tokens, config.seq_len, batch_size=eval_batch_size)
            runs.append(
                SweepRun(
                    width=width,
                    n_params=non_embedding_params(model),
                    tokens=n_steps * config.batch_size * config.grad_accum * config.seq_len,
                    val_loss=loss,
                    seconds=time.perf_counter() - start,
                )
            )
    return runs
