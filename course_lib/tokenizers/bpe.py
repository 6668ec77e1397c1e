"""Byte-level byte-pair encoding: pre-tokenize, merge by rank, map to ids; and back.

BPE (Sennrich et al. 2016, arXiv:1508.07909) on UTF-8 bytes as in GPT-2 (Radford et al.
2019): the text is split into chunks by a regular expression (words with their leading
space, runs of digits, of punctuation, of whitespace), each chunk starts as its bytes, and
the learned merges are applied lowest rank first until none applies. Every byte is in the
vocabulary, so any string encodes and nothing is ever unknown.

Tokens are `bytes` here. Hugging Face and GGUF files store them as printable strings through
GPT-2's `bytes_to_unicode` map (byte 0x20, a space, is written "Ġ"); `from_vocab_merges`
reads that format, so a real model's tokenizer runs through this same code.

API
- `GPT2_PATTERN`: GPT-2's pre-tokenizer regex (the `regex` module's syntax)
- `bytes_to_unicode() -> dict[int, str]`, `pretokenize(text, pattern, split_digits)`
- `BPETokenizer(vocab, merges, special_tokens, pattern, split_digits)`:
  `encode(text, allow_special=True) -> list[int]`, `decode(ids) -> str`, `tokens(ids)`,
  `BPETokenizer.from_vocab_merges(vocab, merges, ...)` for the Hugging Face/GGUF format
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import regex

# GPT-2's encoder.py: contractions, letters and numbers with an optional leading space,
# other symbols, whitespace that does not precede a non-space (so " word" keeps its space).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

Pair = tuple[bytes, bytes]


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte: printable bytes map to themselves, the 68
    others (controls, space, ...) to code points 256, 257, ... in byte order."""
    keep = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)}
    keep |= set(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def _unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _from_printable(token: str) -> bytes:
    """A GPT-2 printable token string back to its bytes."""
    inverse = _unicode_to_bytes()
    try:
        return bytes(inverse[c] for c in token)
    except KeyError as e:
        raise ValueError(f"{token!r} is not a byte-level token (no byte maps to {e})") from None


def pretokenize(text: str, pattern: str = GPT2_PATTERN, split_digits: bool = False) -> list[str]:
    """Chunks that BPE never merges across; `split_digits` first isolates every digit
    (Llama's and SmolLM's tokenizers, so numbers are read digit by digit)."""
    compiled = regex.compile(pattern)
    pieces = regex.findall(r"\p{N}|[^\p{N}]+", text) if split_digits else [text]
    return [chunk for piece in pieces for chunk in compiled.findall(piece)]


class BPETokenizer:
    """A byte-level BPE tokenizer: `vocab` id -> bytes, `merges` in rank order.

    Every merged token a + b must be in the vocabulary. A trained one holds all 256 bytes; a
    real one may leave out control bytes, which then fail to encode. `special_tokens` (text -> id) are
    matched in the input before pre-tokenization and never split.
    """

    def __init__(
        self,
        vocab: Mapping[int, bytes],
        merges: Sequence[Pair],
        special_tokens: Mapping[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
        split_digits: bool = False,
    ) -> None:
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.special_tokens = dict(special_tokens or {})
        self.pattern, self.split_digits = pattern, split_digits
        self.ids: dict[bytes, int] = {}  # bytes -> id; the smallest id if two merges agree
        for i in sorted(self.vocab):
            self.ids.setdefault(self.vocab[i], i)
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        for a, b in self.merges:
            if a + b not in self.ids:
                raise ValueError(f"merge {a!r} + {b!r} makes a token not in the vocabulary")
        by_length = sorted(self.special_tokens, key=len, reverse=True)
        self._special = regex.compile("|".join(map(regex.escape, by_length))) if by_length else None
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.vocab) + len(set(self.special_tokens.values()) - set(self.vocab))

    @classmethod
    def from_vocab_merges(
        cls,
        vocab: Mapping[str, int],
        merges: Iterable[str | Sequence[str]],
        special_tokens: Iterable[str] = (),
        pattern: str = GPT2_PATTERN,
        split_digits: bool = False,
    ) -> BPETokenizer:
        """From Hugging Face/GGUF printable strings: vocab {"Ġthe": 260, ...}, merges
        ["Ġ t", ...] or [["Ġ", "t"], ...]; the special tokens keep their text."""
        special = {text: vocab[text] for text in special_tokens}
        ids = {i: _from_printable(tok) for tok, i in vocab.items() if tok not in special}
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        bad = [p for p in pairs if len(p) != 2]
        if bad:
            raise ValueError(f"a merge is two tokens separated by one space, got {bad[0]!r}")
        return cls(
            ids,
            [(_from_printable(a), _from_printable(b)) for a, b in pairs],
            special,
            pattern,
            split_digits,
        )

    def _merge(self, chunk: bytes) -> list[bytes]:
        """Apply the merges to one chunk: repeatedly the lowest-rank adjacent pair, every
        occurrence left to right (GPT-2's `bpe`)."""
        parts = [bytes([b]) for b in chunk]
        while len(parts) > 1:
            pair = min(
                zip(parts, parts[1:], strict=False), key=lambda p: self.ranks.get(p, 1 << 62)
            )
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                    merged.append(pair[0] + pair[1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def _encode_ordinary(self, text: str) -> list[int]:
        out: list[int] = []
        for chunk in pretokenize(text, self.pattern, self.split_digits):
            ids = self._cache.get(chunk)
            if ids is None:
                try:
                    ids = [self.ids[p] for p in self._merge(chunk.encode("utf-8"))]
                except KeyError as e:
                    raise ValueError(
                        f"{chunk!r} has the byte {e} that is not in the vocabulary (some real "
                        "vocabularies leave out control bytes never seen in training)"
                    ) from None
                if len(self._cache) < 100_000:
                    self._cache[chunk] = ids
            out.extend(ids)
        return out

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Text -> token ids. With `allow_special`, special-token text (e.g. "<|im_end|>")
        becomes its one id, as in Hugging Face `tokenizers`; otherwise it is plain text."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        if not allow_special or self._special is None:
            return self._encode_ordinary(text)
        out, start = [], 0
        for match in self._special.finditer(text):
            out += self._encode_ordinary(text[start : match.start()])
            out.append(self.special_tokens[match.group()])
            start = match.end()
        return out + self._encode_ordinary(text[start:])

    def tokens(self, ids: Iterable[int]) -> list[bytes]:
        """The bytes of each id (special tokens as their UTF-8 text)."""
        special = {i: t.encode("utf-8") for t, i in self.special_tokens.items()}
        try:
            return [special[i] if i in special else self.vocab[i] for i in map(int, ids)]
        except KeyError as e:
            raise ValueError(f"token id {e} is not in the vocabulary of {len(self)}") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; bytes that are not valid UTF-8 (half a character) become U+FFFD."""
        return b"".join(self.tokens(ids)).decode("utf-8", errors="replace")
