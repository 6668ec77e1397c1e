"""course_lib.training against PyTorch's own ops: loss, AdamW, schedule, clipping, batches,
accumulation, checkpoint resume; the loop against the one written out in chapter 3; the
scaling sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models import ModelConfig, Transformer
from course_lib.models.gpt import GPT, GPTConfig
from course_lib.training import (
    AdamW,
    TrainConfig,
    clip_grad_norm,
    cosine_lr,
    cross_entropy,
    evaluate_loss,
    get_batch,
    param_groups,
    train,
    train_step,
)
from course_lib.training.sweep import scaling_sweep


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_entropy_equals_torch_with_ignored_positions(dtype) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 11, generator=g, dtype=dtype) * 30).requires_grad_()
    targets = torch.randint(0, 11, (3, 5), generator=g)
    targets[0, :2] = -100
    targets[2, 4] = -100
    got = cross_entropy(logits, targets)
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    torch.testing.assert_close(got, expected)
    (g1,) = torch.autograd.grad(got, logits)
    (g2,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(g1, g2)


def test_cross_entropy_is_stable_and_differentiable() -> None:
    logits = torch.tensor([[1e4, 0.0, -1e4]], dtype=torch.float64, requires_grad=True)
    assert torch.isfinite(cross_entropy(logits, torch.tensor([1])))
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0, 5, -1, 2], [3, -1, 1, 1]])
    assert torch.autograd.gradcheck(lambda z: cross_entropy(z, y, ignore_index=-1), (x,))
    assert torch.isnan(cross_entropy(x, torch.full((2, 4), -1), ignore_index=-1))
    with pytest.raises(ValueError, match="targets of shape"):
        cross_entropy(x, y[:, :3])


def _tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 3))


def test_adamw_equals_torch_over_many_steps() -> None:
    ours, theirs = _tiny_model(), _tiny_model()
    kwargs = dict(lr=3e-2, betas=(0.9, 0.95), eps=1e-8)
    opt_a = AdamW(param_groups(ours, 0.1), **kwargs)
    opt_b = torch.optim.AdamW(param_groups(theirs, 0.1), foreach=False, **kwargs)
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        x = torch.randn(16, 6, generator=g)
        for model, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_param_groups_exempt_one_dimensional_parameters() -> None:
    groups = param_groups(_tiny_model(), 0.1)
    assert [p.dim() for p in groups[0]["params"]] == [2, 2]
    assert all(p.dim() == 1 for p in groups[1]["params"]) and len(groups[1]["params"]) == 4
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    cfg = ModelConfig(
        vocab_size=32, d_model=16, n_layers=1, n_heads=2, d_ff=32, tie_embeddings=True
    )
    model = Transformer(cfg, device="cpu")
    n = sum(len(grp["params"]) for grp in param_groups(model, 0.1))
    assert n == len(list(model.parameters()))  # the tied embedding once


def test_cosine_schedule_convention() -> None:
    lr = [cosine_lr(t, 1.0, 10, 100, 0.1) for t in range(120)]
    assert lr[0] == 0.0 and math.isclose(lr[5], 0.5) and lr[10] == 1.0
    assert math.isclose(lr[55], 0.1 + 0.9 * 0.5) and math.isclose(lr[100], 0.1)
    assert lr[119] == 0.1 and all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False))
    # warm-up 0, floor 0: torch's CosineAnnealingLR
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    for t in range(21):
        assert math.isclose(cosine_lr(t, 1.0, 0, 20), opt.param_groups[0]["lr"], abs_tol=1e-12)
        opt.step()
        sched.step()


@pytest.mark.parametrize("max_norm", [0.05, 1e3])
def test_clip_equals_torch(max_norm: float) -> None:
    a, b = _tiny_model(), _tiny_model()
    x = torch.randn(4, 6)
    for m in (a, b):
        m(x).sum().backward()
    got = clip_grad_norm(a.parameters(), max_norm)
    expected = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm)
    torch.testing.assert_close(got, expected)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_get_batch_samples_every_window_including_the_last(tmp_path) -> None:
    path = tmp_path / "tokens.bin"
    np.arange(12, dtype=np.uint16).tofile(path)
    tokens = np.memmap(path, dtype=np.uint16, mode="r")
    x, y = get_batch(tokens, 2000, 8, "cpu", torch.Generator().manual_seed(0))
    assert x.dtype == torch.int64 and x.shape == y.shape == (2000, 8)
    assert torch.equal(y, x + 1) and torch.equal(x[:, 1:], y[:, :-1])
    counts = torch.bincount(x[:, 0], minlength=4)
    assert len(counts) == 4 and counts.min() > 400  # starts 0..3, the last window included
    x, _ = get_batch(torch.arange(9), 3, 8)  # N = T + 1: exactly one window
    assert torch.equal(x, torch.arange(8).expand(3, 8))
    with pytest.raises(ValueError, match="context_length \\+ 1"):
        get_batch(torch.arange(8), 1, 8)


def _lm(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=16, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_seq_len=16)
    return Transformer(cfg, device="cpu")


def test_gradient_accumulation_equals_the_larger_batch() -> None:
    a, b = _lm(), _lm()
    opt_a = AdamW(param_groups(a, 0.1), lr=1e-2)
    opt_b = AdamW(param_groups(b, 0.1), lr=1e-2)
    x, y = get_batch(
        torch.randint(0, 16, (200,)), 8, 12, generator=torch.Generator().manual_seed(0)
    )
    loss_a, norm_a = train_step(a, opt_a, [(x, y)], max_grad_norm=0.5)
    loss_b, norm_b = train_step(b, opt_b, [(x[:4], y[:4]), (x[4:], y[4:])], max_grad_norm=0.5)
    assert math.isclose(loss_a, loss_b, rel_tol=1e-5) and math.isclose(norm_a, norm_b, rel_tol=1e-5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path) -> None:
    tokens = torch.randint(0, 16, (500,), generator=torch.Generator().manual_seed(3))
    cfg = TrainConfig(steps=8, batch_size=4, seq_len=12, grad_accum=2, lr=1e-2, warmup=2,
                      eval_every=3, progress=False)  # fmt: skip
    whole = _lm()
    log_whole = train(whole, tokens, tokens, cfg)
    cfg.checkpoint_path = tmp_path / "ckpt.pt"
    first = _lm()
    train(first, tokens, tokens, cfg, stop_after=5)
    resumed = _lm(seed=1)  # different weights: all must come from the checkpoint
    log_resumed = train(resumed, tokens, tokens, cfg, resume=True)
    assert log_resumed.losses == log_whole.losses and log_resumed.lrs == log_whole.lrs
    assert log_resumed.val_losses == log_whole.val_losses
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_bf16_autocast_trains() -> None:
    tokens = torch.arange(16).repeat(30)
    cfg = TrainConfig(steps=15, batch_size=4, seq_len=12, lr=3e-2, warmup=2, bf16=True,
                      progress=False)  # fmt: skip
    log = train(_lm(), tokens, tokens, cfg)
    assert log.val_losses[-1][1] < 0.8 * math.log(16) and log.tokens_per_second > 0
    assert 0 < log.mfu < 1


def test_train_takes_the_same_steps_as_the_loop_written_out() -> None:
    """Chapter 3 writes the loop out and asserts it equals `train`: bit for bit."""
    tokens = torch.randint(0, 16, (400,), generator=torch.Generator().manual_seed(4))
    steps, lr, warmup = 6, 1e-2, 2
    inline = _lm()
    optimizer = AdamW(param_groups(inline, 0.1), lr=lr, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, lr, warmup, steps, lr / 10)
        x, y = get_batch(tokens, 4, 12, generator=generator)
        loss = cross_entropy(inline(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm(inline.parameters(), 0.5)
        optimizer.step()
        losses.append(loss.item())
    library = _lm()
    cfg = TrainConfig(steps=steps, batch_size=4, seq_len=12, lr=lr, warmup=warmup,
                      max_grad_norm=0.5, progress=False)  # fmt: skip
    log = train(library, tokens, config=cfg)
    assert log.losses == losses
    for p, q in zip(inline.parameters(), library.parameters(), strict=True):
        assert torch.equal(p, q)


def test_scaling_sweep_runs_each_point_with_its_own_schedule() -> None:
    tokens = np.tile(np.arange(32, dtype=np.uint8), 40)  # (1280,)
    cfg = TrainConfig(batch_size=4, seq_len=8, lr=1e-2, seed=3)
    runs = scaling_sweep(tokens, tokens, (8, 16), (4, 10), cfg, vocab_size=32, head_size=8)
    assert [(r.width, r.tokens) for r in runs] == [(8, 128), (8, 320), (16, 128), (16, 320)]
    for run in runs:  # per layer 12 C² + 13 C (matrices and biases, 2 LayerNorms), + ln_f
        c = run.width
        assert run.n_params == 2 * (12 * c * c + 13 * c) + 2 * c
    # The 10-step point is a run of 10 steps with a 1-step warm-up, not a checkpoint.
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=16))
    cfg_10 = TrainConfig(steps=10, batch_size=4, seq_len=8, lr=1e-2, warmup=1, seed=3,
                         progress=False)  # fmt: skip
    train(model, tokens, config=cfg_10)
    assert runs[-1].val_loss == evaluate_loss(model, tokens, 8, batch_size=64)
    again = scaling_sweep(tokens, tokens, (8, 16), (4, 10), cfg, vocab_size=32, head_size=8)
    assert [r.val_loss for r in again] == [r.val_loss for r in runs]
    assert runs[1].val_loss < runs[0].val_loss  # more steps on a periodic stream: lower loss
