"""Tokenizers: byte-level BPE trained from scratch, and real models' vocabularies run through it.

- `GPT2_PATTERN`, `bytes_to_unicode`, `pretokenize`, `BPETokenizer` (`course_lib.tokenizers.bpe`)
- `train_bpe(text, n_merges, ...) -> BPETokenizer` (`course_lib.tokenizers.train`)
- `gguf_tokenizer(path) -> BPETokenizer`: the vocabulary, merges, special tokens and
  pre-tokenizer stored in a GGUF file, e.g. SmolLM2's (`course_lib.tokenizers.pretrained`)
"""

from course_lib.tokenizers.bpe import GPT2_PATTERN, BPETokenizer, bytes_to_unicode, pretokenize
from course_lib.tokenizers.pretrained import gguf_tokenizer
from course_lib.tokenizers.train import train_bpe

__all__ = [
    "GPT2_PATTERN",
    "BPETokenizer",
    "bytes_to_unicode",
    "gguf_tokenizer",
    "pretokenize",
    "train_bpe",
]
