"""Autoregressive generation with or without the KV cache.

With the cache (Pope et al. 2022, "Efficiently Scaling Transformer Inference"), the prompt
is processed once (prefill) and every later step feeds only the newest token, whose keys
and values are appended to pre-allocated buffers: a step costs one pass over the weights
plus one over the cache. Without it every step recomputes the whole prefix, which gives the
same logits (the test of the cache) at a cost growing with the length.
"""

from __future__ import annotations

import torch

from course_lib.kernels.sampling import sample
from course_lib.models.transformer import Transformer


@torch.no_grad()
def generate(
    model: Transformer,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    use_cache: bool = True,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    return_logits: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Continue input_ids (B, T) by max_new_tokens tokens: returns (B, T + max_new_tokens).

    temperature 0 is greedy decoding; otherwise tokens are drawn by
    `course_lib.kernels.sampling.sample` (temperature, top-k, top-p, `generator` for
    reproducible draws). `return_logits=True` also returns the logits each new token was
    chosen from, (B, max_new_tokens, vocab) in float32. Runs under `torch.no_grad`, not
    `inference_mode`, so that the outputs can be trained on (fine-tuning on generations).
    """
    B, T = input_ids.shape
    total = T + max_new_tokens
    tokens = torch.empty(B, total, dtype=torch.long, device=input_ids.device)
    tokens[:, :T] = input_ids
    step_logits = []
    cache = model.new_cache(B, total - 1) if use_cache and max_new_tokens > 0 else None
    if cache is not None:
        logits = model(input_ids, cache, last_only=True)[:, -1]  # prefill: (B, vocab)
    for t in range(T, total):
        if cache is None:
            logits = model(tokens[:, :t], last_only=True)[:, -1]  # recompute the whole prefix
        if return_logits:
            step_logits.append(logits.float())
        tokens[:, t] = sample(
            logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
        )
        if cache is not None and t + 1 < total:
            logits = model(tokens[:, t : t + 1], cache, last_only=True)[:, -1]  # decode step
    if not return_logits:
        return tokens
    vocab = model.cfg.vocab_size
    logits_out = torch.stack(step_logits, dim=1) if step_logits else torch.empty(B, 0, vocab)
    return tokens, logits_out
