"""Peak memory and time of naive attention, the tiled PyTorch FlashAttention, and torch SDPA.

    python benchmarks/bench_attention_memory.py [--lengths 1024 2048 4096 8192 16384]
        [--budget-gib 4.5] [--threads 1]

Causal attention, batch 1, 8 heads, head dim 64, float32, on the CPU. Each (method, T)
point runs in a fresh subprocess: tracemalloc cannot see torch's allocations, so the
extra memory is the process's peak RSS (getrusage ru_maxrss) during the call minus its
RSS (psutil) just before it, after a small warm-up call. Beside it the analytic size of
what each method keeps alive: naive holds the (H, T, T) scores and their softmax (two
float32 tensors, 2 * H * T^2 * 4 bytes); the tiled kernel holds the output, the
log-sum-exp and one (block_q x block_k) tile per head. Naive attention is run only while
its analytic peak fits the budget; above it the analytic figure is reported, labelled.
A benchmark, not a test: it prints ratios, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

H, D, BLOCK = 8, 64, 256
METHODS = ("naive", "tiled", "sdpa")


def analytic_bytes(method: str, T: int) -> float | None:
    """What the method keeps alive beyond its inputs, in bytes (float32)."""
    if method == "naive":
        return 2 * H * T * T * 4  # scores and softmax(scores)
    if method == "tiled":
        tile = min(BLOCK, T)
        out, lse = H * T * D * 4, H * T * 4
        per_block = H * tile * (D + 2) * 4 + 3 * H * tile * tile * 4  # acc, m, l; s, p, mask
        return out + lse + per_block
    return None  # SDPA's CPU kernel: not documented


def run(method: str, q, k, v):
    import torch
    import torch.nn.functional as F

    if method == "naive":
        T = q.shape[2]
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D))  # (1, H, T, T)
        s.masked_fill_(torch.ones(T, T, dtype=torch.bool).triu_(1), -math.inf)
        return torch.softmax(s, dim=-1) @ v
    if method == "tiled":
        from course_lib.kernels.flash import flash_attention_torch

        return flash_attention_torch(q, k, v, causal=True, block_q=BLOCK, block_k=BLOCK)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def worker(method: str, T: int, threads: int) -> dict:
    """One measurement in this (fresh) process."""
    import psutil
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, H, T, D, generator=g) for _ in range(3))
    small = tuple(t[:, :, :64].contiguous() for t in (q, k, v))
    run(method, *small)  # warm-up: load kernels and allocator pools at negligible size
    rss_before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    out = run(method, q, k, v)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    assert out.shape == (1, H, T, D)
    return {"measured_bytes": max(0, peak - rss_before), "seconds": seconds}


def measure(method: str, T: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, str(T), "--threads", str(threads)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def mib(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--budget-gib", type=float, default=4.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.threads)))
        return

    rows = []
    for T in args.lengths:
        row = {"T": T}
        for method in METHODS:
            analytic = analytic_bytes(method, T)
            if method == "naive" and analytic > args.budget_gib * 2**30:
                row[method] = {"measured_bytes": None, "seconds": None, "analytic": analytic}
            else:
                row[method] = measure(method, T, args.threads) | {"analytic": analytic}
            print(f"T={T:>6} {method:>5}: {row[method]}", file=sys.stderr)
        rows.append(row)

    print(f"\nCausal attention, B=1, H={H}, D={D}, float32, CPU, {args.threads} thread(s); "
          f"tiled blocks {BLOCK}x{BLOCK}. Memory in MiB: measured peak RSS increase "
          "(fresh process per point) / analytic live size. '(not run)' = naive's analytic "
          f"peak exceeds the {args.budget_gib} GiB budget.")  # fmt: skip
    header = f"{'T':>6} | {'naive meas':>11} {'naive anal':>11} {'s':>7} | {'tiled meas':>10} {'tiled anal':>10} {'s':>7} | {'sdpa meas':>9} {'s':>7} | {'naive/tiled':>11}"
    print(header)
    print("-" * len(header))
    for row in rows:
        n, t, s = row["naive"], row["tiled"], row["sdpa"]
        naive_meas = "(not run)" if n["measured_bytes"] is None else mib(n["measured_bytes"])
        naive_time = "-" if n["seconds"] is None else f"{n['seconds']:.2f}"
        naive_peak = n["measured_bytes"] or n["analytic"]
        ratio = naive_peak / max(t["measured_bytes"], t["analytic"])
        print(f"{row['T']:>6} | {naive_meas:>11} {mib(n['analytic']):>11} {naive_time:>7} | "
              f"{mib(t['measured_bytes']):>10} {mib(t['analytic']):>10} {t['seconds']:>7.2f} | "
              f"{mib(s['measured_bytes']):>9} {s['seconds']:>7.2f} | {ratio:>10.0f}x")  # fmt: skip

    print(
        "\nGrowth per doubling of T (measured where available, else analytic; 2x = linear, 4x = quadratic):"
    )
    for method in METHODS:
        sizes = [r[method]["measured_bytes"] or r[method]["analytic"] for r in rows]
        growth = [f"{b / a:.1f}x" if a else "-" for a, b in zip(sizes, sizes[1:], strict=False)]
        times = [r[method]["seconds"] for r in rows]
        tgrowth = [
            f"{b / a:.1f}x" if a and b else "-" for a, b in zip(times, times[1:], strict=False)
        ]
        print(f"  {method:>5}: memory {' '.join(growth)}   time {' '.join(tgrowth)}")
    print(
        "\nThe Triton kernel was not timed: there is no GPU here (it runs only interpreted on CPU)."
    )


if __name__ == "__main__":
    main()
