"""KV caches and generate(): a cached decode equals full recomputation, for every family.

References: the same model without a cache (logits compared at every greedy step), and
transformers' own `generate` on the same weights (tokens). Sequences run past the sliding
windows of the tiny models, so the rolling buffers wrap around.
"""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from course_lib.models import (
    PRESETS,
    ChunkKVCache,
    MLACache,
    RollingKVCache,
    Transformer,
    from_hf,
    generate,
)
from course_lib.models.hf_tiny import FAMILIES, tiny_hf_model, tiny_input_ids

NEW = 14  # prompt 5 + 14 tokens: past every tiny window (4 or 5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread avoids OpenMP synchronisation costs on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request):
    hf = tiny_hf_model(request.param)
    return hf, from_hf(hf)


def test_cached_decode_equals_recomputation(pair):
    _, ours = pair
    prompt = tiny_input_ids(batch=2, seq_len=5)
    cached, logits_cached = generate(ours, prompt, NEW, return_logits=True)
    full, logits_full = generate(ours, prompt, NEW, use_cache=False, return_logits=True)
    assert logits_cached.shape == (2, NEW, ours.cfg.vocab_size)
    torch.testing.assert_close(logits_cached, logits_full, atol=1e-4, rtol=0)
    assert torch.equal(cached, full)
    assert torch.equal(cached[:, :5], prompt)


def test_greedy_tokens_equal_transformers_generate(pair):
    hf, ours = pair
    prompt = tiny_input_ids(batch=1, seq_len=5, seed=1)
    with torch.no_grad():
        theirs = hf.generate(prompt, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
    assert torch.equal(generate(ours, prompt, NEW), theirs)


@pytest.mark.parametrize("family", ["mistral", "gemma2", "deepseek_v3", "gpt2", "llama4_text"])
def test_chunked_prefill_equals_one_pass(family):
    # Feed 12 tokens as pieces of 7, 1 and 4 through the cache: a piece longer than the
    # window (4) reads the rolling buffer in position order, as a full pass would; Llama 4's
    # 4-token attention chunks are crossed inside a piece and at its ends.
    ours = from_hf(tiny_hf_model(family))
    ids = tiny_input_ids(batch=2, seq_len=12)
    with torch.no_grad():
        expected = ours(ids)
        cache = ours.new_cache(batch=2, max_len=12)
        chunks = [ours(ids[:, a:b], cache) for a, b in ((0, 7), (7, 8), (8, 12))]
    torch.testing.assert_close(torch.cat(chunks, dim=1), expected, atol=1e-4, rtol=0)
    assert cache.seq_len == 12


def test_rolling_buffer_memory_is_bounded_by_the_window():
    cfg = PRESETS["gemma2-9b"].scaled(max_seq_len=512)  # window 128, local/global
    cache = Transformer(cfg, device="meta").new_cache(batch=1, max_len=500)
    local, global_ = cache.layers
    assert isinstance(local, RollingKVCache) and local.k.shape[2] == cfg.sliding_window
    assert global_.k.shape[2] == 500


def test_chunk_cache_memory_is_bounded_by_the_chunk():
    """Llama 4 Scout's chunked layers keep one chunk (8,192 positions), its global ones all."""
    cfg = PRESETS["llama4-scout"].scaled(n_layers=4, max_seq_len=40_000)  # 3 chunked, 1 global
    cache = Transformer(cfg, device="meta").new_cache(batch=1, max_len=32_768)
    chunked = [isinstance(layer, ChunkKVCache) for layer in cache.layers]
    assert chunked == [cfg.chunk(i) is not None for i in range(4)] == [True, True, True, False]
    assert all(layer.k.shape[2] == 8192 for layer in cache.layers[:3])
    assert cache.layers[3].k.shape[2] == 32_768


def test_mla_cache_holds_only_the_latent():
    cfg = PRESETS["deepseek-v3"].scaled()
    cache = Transformer(cfg, device="meta").new_cache(batch=3, max_len=20)
    assert all(isinstance(layer, MLACache) for layer in cache.layers)
    assert cache.layers[0].c_kv.shape == (3, 20, cfg.kv_lora_rank)
    assert cache.layers[0].k_rope.shape == (3, 20, cfg.qk_rope_head_dim)


def test_cache_overflow_is_an_error():
    model = Transformer(PRESETS["llama3-8b"].scaled(), device="cpu")
    cache = model.new_cache(batch=1, max_len=4)
    with pytest.raises(ValueError, match="cache holds 4 positions"):
        model(torch.zeros(1, 5, dtype=torch.long), cache)


def test_learned_positions_stop_at_max_seq_len():
    model = Transformer(PRESETS["gpt2"].scaled(max_seq_len=8), device="cpu")
    with pytest.raises(ValueError, match="max_seq_len=8"):
        generate(model, torch.zeros(1, 5, dtype=torch.long), 5)  # feeds positions 0 … 8


def test_sampling_is_reproducible_and_top_k_1_is_greedy():
    model = Transformer(PRESETS["mistral-7b"].scaled(), device="cpu", init_std=0.5)
    prompt = tiny_input_ids(batch=2, seq_len=3)

    def draw(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return generate(model, prompt, 8, temperature=1.0, top_p=0.9, generator=g)

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))
    g = torch.Generator().manual_seed(0)
    top1 = generate(model, prompt, 8, temperature=0.7, top_k=1, generator=g)
    assert torch.equal(top1, generate(model, prompt, 8))


def test_generated_tokens_feed_a_forward_with_grad():
    # fine-tuning on generated text (rejection sampling, GRPO): generate's outputs must be
    # ordinary tensors, not inference tensors (torch.inference_mode) that autograd refuses
    torch.manual_seed(0)
    model = Transformer(PRESETS["llama3-8b"].scaled(vocab_size=97), device="cpu")
    tokens, logits = generate(model, tiny_input_ids(1, 4), 3, return_logits=True)
    assert not tokens.is_inference() and not logits.is_inference()
    loss = torch.nn.functional.cross_entropy(model(tokens)[0, :-1], tokens[0, 1:])
    loss.backward()
    assert model.embed.weight.grad is not None


class _LargestCopy(TorchFunctionMode):
    """Records the largest output of torch.cat / torch.stack inside the block."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in (torch.cat, torch.stack):
            self.largest = max(self.largest, result.numel())
        return result


@pytest.mark.parametrize("preset", ["deepseek-v3", "llama3-8b"])
def test_a_decode_step_never_copies_the_history(preset):
    cfg = PRESETS[preset].scaled(vocab_size=97)
    torch.manual_seed(0)
    model = Transformer(cfg, device="cpu")
    cache = model.new_cache(batch=1, max_len=41)
    with torch.no_grad():
        model(torch.randint(0, 97, (1, 40)), cache)  # prefill 40 tokens
        with _LargestCopy() as spy:
            step = model(torch.tensor([[3]]), cache)  # one decode step
        history = 40 * (cfg.kv_lora_rank or cfg.n_kv_heads * cfg.head_dim)
    assert spy.largest < history  # concatenations of the new token only
    assert step.shape == (1, 1, 97)
