"""course_lib.tokenizers: byte-level BPE against Hugging Face `tokenizers` and a naive trainer.

The real vocabulary is SmolLM2's, read from its GGUF file; the peer is the tokenizer that
`course_lib.models.from_gguf` returns with the model, Hugging Face's Rust BPE built from the
same metadata with SmolLM2's pre-tokenizer (digits split one by one, then GPT-2's regex).
"""

from __future__ import annotations

from collections import Counter

import pytest
import regex

from course_lib.data.corpus import pydoc_text
from course_lib.models import smollm2 as smollm2_gguf
from course_lib.models.gguf_file import GGUFFile
from course_lib.models.gguf_tokenizer import build_tokenizer
from course_lib.tokenizers import (
    GPT2_PATTERN,
    BPETokenizer,
    bytes_to_unicode,
    gguf_tokenizer,
    pretokenize,
    train_bpe,
)

tokenizers = pytest.importorskip("tokenizers")

VARIED = [
    "Hello world 12345  \n\n héllo 😀",
    "  leading spaces\t\ttabs\r\n trailing   ",
    "I'm here, you'll see; they've 3.14159 π≈3 (x+y)**2 != 0",
    "日本語のテキスト 中文 한국어 Ελληνικά русский",
    "\u00a0nbsp\u2003em space\u3000ideographic ٣٤ Ⅻ ½ ²",
    "don't DON'T 's 'S ''quoted''",
    "a  b   c    d\n\n\n  e\t \n",
    "def f(x):\n    return x ** 2  # square\n",
    "x" * 60,
    "",
]


@pytest.fixture(scope="module")
def smollm2():
    """(course_lib's tokenizer, Hugging Face's as `from_gguf` builds it) for SmolLM2."""
    path = smollm2_gguf()
    return gguf_tokenizer(path), build_tokenizer(GGUFFile(path).metadata).backend_tokenizer


def test_bytes_to_unicode_is_hf_byte_level_alphabet():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert set(table.values()) == set(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    assert table[ord(" ")] == "Ġ" and table[ord("A")] == "A"


@pytest.mark.parametrize("text", VARIED)
def test_pretokenize_equals_hf_byte_level(text):
    hf = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    table = bytes_to_unicode()
    ours = ["".join(table[b] for b in chunk.encode()) for chunk in pretokenize(text)]
    assert ours == [piece for piece, _ in hf.pre_tokenize_str(text)]


def test_smollm2_encode_equals_hf(smollm2):
    ours, hf = smollm2
    for text in [*VARIED, pydoc_text()[:20_000]]:
        ids = ours.encode(text)
        assert ids == hf.encode(text).ids, text[:40]
        assert ours.decode(ids) == text == hf.decode(ids, skip_special_tokens=False)


def test_smollm2_special_tokens(smollm2):
    ours, hf = smollm2
    chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    ids = ours.encode(chat)
    assert ids == hf.encode(chat).ids
    assert ids[0] == ours.special_tokens["<|im_start|>"] == 1
    plain = ours.encode(chat, allow_special=False)
    assert 1 not in plain and len(plain) > len(ids) and ours.decode(plain) == chat
    assert len(ours) == hf.get_vocab_size() == 49152


def test_smollm2_missing_byte_is_a_clear_error(smollm2):
    ours, _ = smollm2
    missing = next(b for b in range(256) if bytes([b]) not in ours.ids)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ours.encode(f"a{chr(missing)}b")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ours.decode([10**6])


def _naive_train(text: str, n_merges: int) -> list[tuple[bytes, bytes]]:
    """Recount every pair after every merge; most frequent, ties to the smallest pair."""
    words = Counter(
        tuple(bytes([b]) for b in w.encode()) for w in regex.findall(GPT2_PATTERN, text)
    )
    merges = []
    for _ in range(n_merges):
        counts = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:], strict=False):
                counts[pair] += n
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        merged = Counter()
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def test_train_bpe_equals_naive_recount():
    text = pydoc_text()[:30_000]
    tok = train_bpe(text, 120)
    assert tok.merges == _naive_train(text, 120)
    assert all(tok.vocab[256 + r] == a + b for r, (a, b) in enumerate(tok.merges))


def test_train_bpe_round_trip_and_compression():
    text = pydoc_text()
    train, held_out = text[:100_000], text[-20_000:]
    small, large = train_bpe(train, 50), train_bpe(train, 400, special_tokens=["<|eot|>"])
    for tok in (small, large):
        for sample in [held_out, *VARIED]:
            assert tok.decode(tok.encode(sample)) == sample
    assert len(large.encode(held_out)) < len(small.encode(held_out)) < len(held_out.encode())
    eot = large.special_tokens["<|eot|>"]
    assert eot == len(large) - 1 == 256 + 400
    assert large.encode("a<|eot|>b") == [*large.encode("a"), eot, *large.encode("b")]


def test_train_bpe_stops_when_nothing_is_left():
    tok = train_bpe("ab ab", 10)  # chunks "ab", " ab": merges ab, then " " + "ab"
    assert tok.merges == [(b"a", b"b"), (b" ", b"ab")]
    assert tok.encode("ab ab") == [256, 257]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="n_merges"):
        train_bpe("abc", -1)
    with pytest.raises(TypeError, match="takes a str"):
        train_bpe("abc", 1).encode(b"abc")
    vocab = {b: bytes([b]) for b in range(256)}
    with pytest.raises(ValueError, match="not in the vocabulary"):
        BPETokenizer(vocab, [(b"a", b"b")])
    with pytest.raises(ValueError, match="two tokens"):
        BPETokenizer.from_vocab_merges({"a": 0}, ["a b c"])
