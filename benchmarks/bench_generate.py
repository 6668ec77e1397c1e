"""Decoding speed of course_lib's Transformer against transformers, and the bandwidth bound.

    .venv/bin/python benchmarks/bench_generate.py [--new-tokens 64] [--repeats 3]

One run, one process, the same random weights: a Llama-style model (8 layers, d_model 512,
8 query heads over 2 key/value heads, SwiGLU width 1536, vocabulary 32000, float32, batch
1) built as a `LlamaForCausalLM` and copied into course_lib with `from_hf`. It prints the
tokens/s of greedy generation with course_lib's KV cache, without it (full recomputation at
every step), and with `transformers`' `generate`, plus the bound that memory bandwidth puts
on decoding: a step must read every weight it multiplies once (Pope et al. 2022), so
tokens/s <= bandwidth / weight bytes per token, with the bandwidth of a large
matrix-vector product measured here, in the same run. The contenders run in interleaved
rounds and each keeps its best round (the machine may be shared). Not a test: nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from course_lib.models import from_hf, generate, weight_bytes_per_token  # noqa: E402


def timed(fn) -> float:
    """Wall time of one call of fn."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matvec(w: torch.Tensor, x: torch.Tensor, n: int = 20) -> None:
    """n matrix-vector products y = W x: W (32000, 512) float32 is as big as the output layer."""
    for _ in range(n):
        torch.mv(w, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    hf_config = transformers.LlamaConfig(
        vocab_size=32000, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=2048,
        attn_implementation="eager", bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )  # fmt: skip
    hf = transformers.LlamaForCausalLM(hf_config).float().eval()
    ours = from_hf(hf)
    prompt = torch.randint(0, 32000, (1, args.prompt_tokens))
    n = args.new_tokens

    def hf_generate() -> torch.Tensor:
        with torch.inference_mode():
            return hf.generate(
                prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True
            )

    w, x = torch.randn(32000, 512), torch.randn(512)
    runs = {
        "course_lib, KV cache": lambda: generate(ours, prompt, n),
        "course_lib, no cache": lambda: generate(ours, prompt, n, use_cache=False),
        "transformers generate": hf_generate,
        "matvec": lambda: matvec(w, x),
    }
    same = torch.equal(generate(ours, prompt, n), hf_generate())  # also warms up
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):  # interleaved rounds: a load spike hits every contender
        for name, fn in runs.items():
            best[name] = min(best[name], timed(fn))
    bandwidth = w.nbytes * 20 / best.pop("matvec")
    bytes_per_token = weight_bytes_per_token(ours.cfg, bytes_per_element=4)
    bound = bandwidth / bytes_per_token

    print(f"Llama-style model, {sum(p.numel() for p in ours.parameters()) / 1e6:.1f}M parameters, "
          f"fp32, batch 1, {torch.get_num_threads()} threads; prompt {args.prompt_tokens}, "
          f"{n} new tokens (prefill included), best of {args.repeats}")  # fmt: skip
    print(f"greedy tokens identical to transformers: {same}")
    rows = [(name, n / t) for name, t in best.items()]
    for name, rate in rows:
        print(f"  {name:24s} {rate:8.1f} tokens/s")
    print(f"  {'bandwidth bound':24s} {bound:8.1f} tokens/s "
          f"({bandwidth / 1e9:.1f} GB/s matrix-vector, {bytes_per_token / 1e6:.0f} MB of weights per token)")  # fmt: skip
    print(f"course_lib cache / transformers: {rows[0][1] / rows[2][1]:.2f}x")
    print(f"course_lib cache / bound:        {rows[0][1] / bound:.0%}")


if __name__ == "__main__":
    main()
