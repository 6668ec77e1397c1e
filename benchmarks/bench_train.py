"""Training throughput of course_lib's loop against a plain PyTorch loop on the same model.

    .venv/bin/python benchmarks/bench_train.py [--steps 20] [--rounds 3] [--device cpu]

One run, one process, the same GPT (course_lib.models.gpt; 4 layers, width 256, context
128, batch 8, bytes) and the same batches. course_lib's step (`course_lib.training.
train_step`: its own cross-entropy, global-norm clipping and AdamW with nanoGPT's decay
groups) against a plain step with `F.cross_entropy`, `clip_grad_norm_` and
`torch.optim.AdamW` (fused on CUDA, foreach elsewhere), with the same decay groups. It
prints tokens/s, MFU against the matmul peak measured in the same run (`course_lib.
training.measured_peak_flops`, in the training dtype) and the ratio. The contenders run in
interleaved rounds and each keeps its best (the machine may be shared). Goal: course_lib
within 10% of plain PyTorch. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from course_lib.models.gpt import GPT, GPTConfig
from course_lib.training import (
    AdamW,
    get_batch,
    measured_peak_flops,
    model_flops_per_token,
    param_groups,
    train_step,
)


def plain_step(model, optimizer, x, y) -> None:
    """The textbook PyTorch step."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    loss.item()  # both loops read the loss back each step (for the log / progress bar)


def torch_adamw(model, device: torch.device) -> torch.optim.Optimizer:
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95), **fast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=256)
    batch, seq = (8, 128) if device.type == "cpu" else (64, 128)
    tokens = torch.randint(0, 256, (200_000,), generator=torch.Generator().manual_seed(0))
    batches = [
        get_batch(tokens, batch, seq, device, torch.Generator().manual_seed(i))
        for i in range(args.steps)
    ]
    models = {}
    for name in ("course_lib", "plain PyTorch"):
        torch.manual_seed(0)
        models[name] = GPT(config, device=device)
    ours, plain = models["course_lib"], models["plain PyTorch"]
    opt_ours = AdamW(param_groups(ours, 0.1), lr=1e-3, betas=(0.9, 0.95))
    opt_plain = torch_adamw(plain, device)
    steps = {
        "course_lib": lambda x, y: train_step(ours, opt_ours, [(x, y)], 1.0),
        "plain PyTorch": lambda x, y: plain_step(plain, opt_plain, x, y),
    }
    best = dict.fromkeys(steps, float("inf"))
    for step in steps.values():  # warm-up (allocations, kernels)
        step(*batches[0])
    for _ in range(args.rounds):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for x, y in batches:
                step(x, y)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    flops = model_flops_per_token(ours, seq)
    peak = measured_peak_flops(device, torch.float32)
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"GPT {n_params / 1e6:.1f}M parameters, batch {batch} x {seq} tokens, {device}, "
          f"fp32; measured matmul peak {peak / 1e9:,.0f} GFLOP/s")  # fmt: skip
    rate = {}
    for name, seconds in best.items():
        rate[name] = args.steps * batch * seq / seconds
        print(f"{name:>14}: {rate[name]:>10,.0f} tokens/s   MFU {rate[name] * flops / peak:6.1%}")
    ratio = rate["course_lib"] / rate["plain PyTorch"]
    print(f"course_lib / plain PyTorch: {ratio:.3f} (goal: at least 0.90)")


if __name__ == "__main__":
    main()
