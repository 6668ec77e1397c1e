"""A real model's tokenizer, read from the metadata of its GGUF file, run by `BPETokenizer`.

A GGUF file (read by `course_lib.models.gguf_file`) stores `tokenizer.ggml.tokens` (printable
token strings, id order), `tokenizer.ggml.merges` ("Ġ t", rank order),
`tokenizer.ggml.token_type` (3 = control, i.e. special) and `tokenizer.ggml.pre`, llama.cpp's
name of the pre-tokenizer. `course_lib.models.from_gguf` builds Hugging Face's tokenizer from
the same metadata; this one is course_lib's own encoder, tested equal to it.

API
- `gguf_tokenizer(path) -> BPETokenizer`
"""

from __future__ import annotations

from pathlib import Path

from course_lib.models.gguf_file import GGUFFile
from course_lib.models.gguf_tokenizer import CONTROL, DIGIT_SPLIT
from course_lib.tokenizers.bpe import GPT2_PATTERN, BPETokenizer


def gguf_tokenizer(path: str | Path) -> BPETokenizer:
    """The byte-level BPE tokenizer stored in a GGUF file (`tokenizer.ggml.model` "gpt2").

    Pre-tokenizer: GPT-2's regex; for llama.cpp's digit-splitting vocabularies (SmolLM,
    StarCoder, ...) every digit is cut apart first.
    """
    meta = GGUFFile(path).metadata
    model = meta.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"{path}: tokenizer model {model!r}; only byte-level BPE ('gpt2') is read")
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    special = [t for t, kind in zip(tokens, types, strict=True) if kind == CONTROL]
    return BPETokenizer.from_vocab_merges(
        {t: i for i, t in enumerate(tokens)},
        meta["tokenizer.ggml.merges"],
        special_tokens=special,
        pattern=GPT2_PATTERN,
        split_digits=meta.get("tokenizer.ggml.pre") in DIGIT_SPLIT,
    )
