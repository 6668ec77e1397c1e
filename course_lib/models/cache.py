"""KV caches for decoding: dense, rolling buffer (sliding window), chunk and MLA latent.

Every buffer is allocated once, for the longest sequence the generation can reach, and
filled in place: no concatenation per decoding step. Four kinds, one per attention type:

- `DenseKVCache`: keys and values of every past token, (B, n_kv_heads, S, head_dim).
- `RollingKVCache`: a sliding-window layer only ever looks at its last `window` keys, so
  the buffer has `window` slots and token p goes to slot p mod window (Mistral 7B's rolling
  buffer cache, Jiang et al. 2023, Section 2): memory is bounded by the window, not by S.
- `ChunkKVCache`: a chunked layer (Llama 4) only looks at the keys of its query's own chunk
  of `chunk` positions, so the buffer holds the current chunk, position p in slot p mod
  chunk, and starts over at each chunk boundary: memory is bounded by the chunk.
- `MLACache`: Multi-head Latent Attention (DeepSeek-V2, 2024) caches, per token, only the
  normalised latent c_KV (kv_lora_rank numbers) and the shared RoPE key (qk_rope_head_dim),
  and rebuilds per-head keys and values from them.

`Cache` holds one of these per layer and the number of tokens already processed.
"""

from __future__ import annotations

import torch

from course_lib.models.config import ModelConfig


class DenseKVCache:
    """K and V of every position: k, v (B, n_kv_heads, max_len, head_dim)."""

    def __init__(self, batch: int, n_kv_heads: int, max_len: int, head_dim: int, **factory) -> None:
        self.k = torch.zeros(batch, n_kv_heads, max_len, head_dim, **factory)
        self.v = torch.zeros(batch, n_kv_heads, max_len, head_dim, **factory)

    def update(
        self, k: torch.Tensor, v: torch.Tensor, pos: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H_kv, T, D) of positions pos … pos+T-1; return the keys and values of
        positions 0 … pos+T-1 (views, no copy), the new queries being the last T of them."""
        end = pos + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"cache holds {self.k.shape[2]} positions, asked for {end}")
        self.k[:, :, pos:end] = k
        self.v[:, :, pos:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


class RollingKVCache:
    """The last `window` keys and values of a sliding-window layer; position p in slot p % window."""

    def __init__(self, batch: int, n_kv_heads: int, window: int, head_dim: int, **factory) -> None:
        self.window = window
        self.k = torch.zeros(batch, n_kv_heads, window, head_dim, **factory)
        self.v = torch.zeros(batch, n_kv_heads, window, head_dim, **factory)

    def _ordered(self, pos: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached positions max(0, pos-window+1) … pos-1, oldest first (B, H_kv, n, D)."""
        first = max(0, pos - self.window + 1)
        slots = torch.arange(first, pos, device=self.k.device) % self.window
        return self.k[:, :, slots], self.v[:, :, slots]

    def update(
        self, k: torch.Tensor, v: torch.Tensor, pos: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H_kv, T, D) of positions pos … pos+T-1 and return the keys and values
        the new queries may attend to, with the queries as the last T.

        One new token (decoding): the whole filled buffer, in slot order. Every entry is one
        of the last `window` positions, all visible to the query, and attention does not
        depend on the order of the keys (RoPE is already applied), so no reordering is needed.
        Several tokens (prefill): the previous window in position order followed by the new
        tokens, for the attention kernel to mask by position.
        """
        T, w = k.shape[2], self.window
        if T == 1:
            slot = pos % w
            self.k[:, :, slot] = k[:, :, 0]
            self.v[:, :, slot] = v[:, :, 0]
            n = min(pos + 1, w)
            return self.k[:, :, :n], self.v[:, :, :n]
        old_k, old_v = self._ordered(pos)
        keys, values = torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2)
        keep = min(T, w)  # only the last `window` new tokens survive
        slots = torch.arange(pos + T - keep, pos + T, device=k.device) % w
        self.k[:, :, slots] = k[:, :, T - keep :]
        self.v[:, :, slots] = v[:, :, T - keep :]
        return keys, values

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


class ChunkKVCache:
    """The keys and values of the current chunk of a chunked layer (Llama 4): position p in
    slot p % chunk; a query at p sees positions p - p % chunk … p only."""

    def __init__(self, batch: int, n_kv_heads: int, chunk: int, head_dim: int, **factory) -> None:
        self.chunk = chunk
        self.k = torch.zeros(batch, n_kv_heads, chunk, head_dim, **factory)
        self.v = torch.zeros(batch, n_kv_heads, chunk, head_dim, **factory)

    def update(
        self, k: torch.Tensor, v: torch.Tensor, pos: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H_kv, T, D) of positions pos … pos+T-1 and return the keys and values
        from the start of pos's chunk to pos+T-1, the new queries last (views for one token).

        The keys returned start at a chunk boundary, so a mask computed on their indices
        (`causal_mask(..., chunk=c)` with the queries last) is the mask of their positions.
        """
        T, c = k.shape[2], self.chunk
        filled = pos % c  # positions of pos's chunk already cached, in slots 0 … filled-1
        if T == 1:
            self.k[:, :, filled] = k[:, :, 0]
            self.v[:, :, filled] = v[:, :, 0]
            return self.k[:, :, : filled + 1], self.v[:, :, : filled + 1]
        keys = torch.cat([self.k[:, :, :filled], k], dim=2)  # (B, H_kv, filled + T, D)
        values = torch.cat([self.v[:, :, :filled], v], dim=2)
        end = pos + T
        start = max(pos, end - end % c)  # the new tokens in the chunk that continues
        self.k[:, :, start % c : start % c + end - start] = k[:, :, start - pos :]
        self.v[:, :, start % c : start % c + end - start] = v[:, :, start - pos :]
        return keys, values

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


class MLACache:
    """MLA's compressed cache: one buffer (B, max_len, kv_lora_rank + rope_dim) holding
    [c_kv | k_rope] per token, so that decoding reads the history as a view, never a copy."""

    def __init__(
        self, batch: int, kv_lora_rank: int, rope_dim: int, max_len: int, **factory
    ) -> None:
        self.rank = kv_lora_rank
        self.latent = torch.zeros(batch, max_len, kv_lora_rank + rope_dim, **factory)

    @property
    def c_kv(self) -> torch.Tensor:
        """(B, max_len, kv_lora_rank), a view."""
        return self.latent[..., : self.rank]

    @property
    def k_rope(self) -> torch.Tensor:
        """(B, max_len, rope_dim), a view."""
        return self.latent[..., self.rank :]

    def past(self, pos: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Entries of positions 0 … pos-1 (views): c_kv (B, pos, r), k_rope (B, pos, d_rope)."""
        return self.c_kv[:, :pos], self.k_rope[:, :pos]

    def store(self, c_kv: torch.Tensor, k_rope: torch.Tensor, pos: int) -> torch.Tensor:
        """Write c_kv (B, T, r) and k_rope (B, T, d_rope) of positions pos … pos+T-1; return
        the entries [c_kv | k_rope] of positions 0 … pos+T-1, (B, pos+T, r + d_rope), a view."""
        end = pos + c_kv.shape[1]
        if end > self.latent.shape[1]:
            raise ValueError(f"cache holds {self.latent.shape[1]} positions, asked for {end}")
        self.latent[:, pos:end, : self.rank] = c_kv
        self.latent[:, pos:end, self.rank :] = k_rope
        return self.latent[:, :end]

    def nbytes(self) -> int:
        return self.latent.nbytes


LayerCache = DenseKVCache | RollingKVCache | ChunkKVCache | MLACache


class Cache:
    """Per-layer caches of a model and `seq_len`, the number of tokens already processed."""

    def __init__(self, layers: list[LayerCache], max_len: int) -> None:
        self.layers = layers
        self.max_len = max_len
        self.seq_len = 0

    @classmethod
    def for_config(
        cls,
        cfg: ModelConfig,
        batch: int,
        max_len: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Cache:
        """Pre-allocate the caches of every layer of `cfg` for sequences up to max_len tokens."""
        factory = {"device": device, "dtype": dtype}
        layers: list[LayerCache] = []
        for i in range(cfg.n_layers):
            window, chunk = cfg.window(i), cfg.chunk(i)
            if cfg.is_mla:
                layers.append(
                    MLACache(batch, cfg.kv_lora_rank, cfg.qk_rope_head_dim, max_len, **factory)
                )
            elif window is not None and window < max_len:
                layers.append(
                    RollingKVCache(batch, cfg.n_kv_heads, window, cfg.head_dim, **factory)
                )
            elif chunk is not None and chunk < max_len:
                layers.append(ChunkKVCache(batch, cfg.n_kv_heads, chunk, cfg.head_dim, **factory))
            else:
                layers.append(DenseKVCache(batch, cfg.n_kv_heads, max_len, cfg.head_dim, **factory))
        return cls(layers, max_len)

    def nbytes(self) -> int:
        """Bytes held by all the buffers (compare with `kv_cache_bytes(cfg, max_len, batch)`)."""
        return sum(layer.nbytes() for layer in self.layers)
