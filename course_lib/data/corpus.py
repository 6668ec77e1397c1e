"""An English training corpus every Python installation has, and a byte-level tokenizer.

The corpus is the Python language reference as `pydoc` ships it: `pydoc_data.topics.topics`
(PSF license, part of CPython), about 80 documents and 0.5 MB of prose and code. Nothing is
downloaded. The tokenizer maps each UTF-8 byte to one id (vocabulary 256), as the byte-level
fallback of GPT-2's BPE does (Radford et al. 2019); decoding replaces broken sequences.
"""

from __future__ import annotations

import torch

VOCAB_SIZE = 256


def pydoc_text() -> str:
    """The pydoc topics, sorted by name, joined by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics))


def encode(text: str) -> torch.Tensor:
    """UTF-8 bytes of `text` as int64 ids (N,)."""
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


def decode(ids: torch.Tensor | list[int]) -> str:
    """Ids back to text; invalid UTF-8 (a sampled half character) becomes U+FFFD."""
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def train_val_split(
    ids: torch.Tensor, val_fraction: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first (1 - val_fraction) of the stream for training, the rest for validation."""
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:]
