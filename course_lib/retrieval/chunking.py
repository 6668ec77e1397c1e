"""Split documents into chunks for retrieval: fixed windows (with overlap) or by section.

An embedding model reads a bounded number of tokens (all-MiniLM-L6-v2 truncates at 256
word pieces) and returns one vector per input, so a long document is cut into chunks and
each chunk is embedded and retrieved on its own. How it is cut decides what can be found:
a fact split across two fixed windows is in neither; overlapping windows (each starts
`size - overlap` characters after the previous) keep any span of up to `overlap + 1`
characters whole in at least one chunk; cutting at section and paragraph boundaries keeps
units of meaning together. Every chunk keeps its character offsets in its document, so
"is the evidence inside this chunk?" is a comparison of offsets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """`text == documents[doc][start:end]`."""

    doc: str
    start: int
    end: int
    text: str

    @property
    def id(self) -> str:
        """A citation key, `doc:start-end`."""
        return f"{self.doc}:{self.start}-{self.end}"


def chunk_fixed(text: str, size: int, overlap: int = 0, *, doc: str = "") -> list[Chunk]:
    """Windows of `size` characters, each starting `size - overlap` after the previous.

    The last window ends at `len(text)` and may be shorter; no window starts inside the
    previous window's overlap only (the windows stop once one reaches the end). `""` gives [].
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 character, got size={size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must satisfy 0 <= overlap < size, got {overlap=} with {size=}")
    step = size - overlap
    chunks = []
    for start in range(0, len(text), step):
        end = min(start + size, len(text))
        chunks.append(Chunk(doc, start, end, text[start:end]))
        if end == len(text):
            break
    return chunks


# A heading in the reference's plain text: a title line underlined by *, = or -.
_HEADING = re.compile(r"^[^\n]+\n[*=\-]{3,}[ \t]*$", re.MULTILINE)
_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\s*\Z)", re.DOTALL)


def chunk_sections(text: str, max_chars: int, *, doc: str = "") -> list[Chunk]:
    """Chunks that end at section or paragraph boundaries, each at most `max_chars` long.

    Sections start at underlined headings; within a section, whole paragraphs are packed
    greedily while the chunk stays within `max_chars`; a paragraph too long for that is cut
    into fixed windows (the first one starting with the chunk it follows, so a heading stays
    with its text). A chunk never spans two sections.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    bounds = sorted({0, *(m.start() for m in _HEADING.finditer(text)), len(text)})
    chunks: list[Chunk] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        start = end = None  # the chunk being packed, text[start:end]
        for m in _PARAGRAPH.finditer(text, lo, hi):
            if start is not None and m.end() - start <= max_chars:
                end = m.end()  # the paragraph joins the current chunk
                continue
            if m.end() - m.start() <= max_chars:
                if start is not None:
                    chunks.append(Chunk(doc, start, end, text[start:end]))
                start, end = m.start(), m.end()
                continue
            # a paragraph too long for any chunk: windows from the current chunk's start on,
            # the last window stays open for the paragraphs that follow
            lo_w = m.start() if start is None else start
            windows = chunk_fixed(text[lo_w : m.end()], max_chars)
            for w in windows[:-1]:
                chunks.append(Chunk(doc, lo_w + w.start, lo_w + w.end, w.text))
            start, end = lo_w + windows[-1].start, m.end()
        if start is not None:
            chunks.append(Chunk(doc, start, end, text[start:end]))
    return chunks


def chunk_documents(
    documents: Mapping[str, str], method: str = "fixed", *, size: int, overlap: int = 0
) -> list[Chunk]:
    """Chunk every document: `method="fixed"` (windows of `size`, `overlap`) or `"sections"`
    (at most `size` characters, cut at headings and paragraphs; `overlap` must be 0)."""
    if method == "fixed":
        return [c for doc, t in documents.items() for c in chunk_fixed(t, size, overlap, doc=doc)]
    if method == "sections":
        if overlap:
            raise ValueError("section chunks do not overlap: pass overlap=0 with method='sections'")
        return [c for doc, t in documents.items() for c in chunk_sections(t, size, doc=doc)]
    raise ValueError(f"unknown chunking method {method!r}; valid: 'fixed', 'sections'")
