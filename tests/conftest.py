"""Shared test set-up: offline, deterministic, CPU."""

import os

import pytest

# Triton reads this when @triton.jit runs, so it must be set before any kernel module import.
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one thread avoids OpenMP synchronisation costs on a shared machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_chat_llama():
    """(model, tokenizer): a tiny random Llama with SmolLM2's real tokenizer, for code that
    needs a chat template and a vocabulary but not trained weights."""
    import torch

    from course_lib.models import ModelConfig, Transformer, smollm2
    from course_lib.models.gguf_file import GGUFFile
    from course_lib.models.gguf_tokenizer import build_tokenizer

    try:
        path = smollm2()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    tokenizer = build_tokenizer(GGUFFile(path).metadata)
    cfg = ModelConfig(vocab_size=len(tokenizer), d_model=32, n_layers=2, n_heads=4, d_ff=64,
                      n_kv_heads=2, max_seq_len=512)  # fmt: skip
    torch.manual_seed(0)
    return Transformer(cfg, device="cpu").eval(), tokenizer
