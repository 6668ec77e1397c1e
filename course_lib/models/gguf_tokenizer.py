"""The tokenizer a GGUF file describes, rebuilt from its metadata with Hugging Face `tokenizers`.

A GGUF carries no `tokenizer.json`; llama.cpp stores the vocabulary (`tokenizer.ggml.tokens`,
already spelled in GPT-2's byte-to-unicode alphabet for byte-level BPE), the merges in
priority order, a type per token (1 normal, 3 control, 4 user-defined), the special token
ids, the chat template and the name of the pre-tokenizer (`tokenizer.ggml.pre`). That is
enough to build the same byte-level BPE (Sennrich et al. 2016; GPT-2, Radford et al. 2019):

- pre-tokenizer: GPT-2's regex split on bytes; SmolLM's vocabulary ("smollm", like
  StarCoder's) first cuts every digit apart, as llama.cpp does for it;
- model: BPE over the byte alphabet with the file's merges;
- control tokens (`<|im_start|>`, `<|im_end|>`, …) added whole, never split.

It is wrapped in transformers' fast-tokenizer class, which brings `encode`, `decode`,
`__call__`, batching and `apply_chat_template` (the file's Jinja template).
"""

from __future__ import annotations

from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

CONTROL, USER_DEFINED = 3, 4  # llama.cpp's token types
# pre-tokenizer names whose vocabularies were trained with every digit alone (llama.cpp's
# LLAMA_VOCAB_PRE_TYPE_STARCODER group); the GPT-2 split otherwise
_DIGIT_SPLIT = {"smollm", "starcoder", "refact", "codeshell", "exaone", "minerva"}


def build_tokenizer(metadata: dict[str, Any]) -> Any:
    """A `transformers.PreTrainedTokenizerFast` from a GGUF's `tokenizer.*` metadata.

    Only byte-level BPE vocabularies (`tokenizer.ggml.model == "gpt2"`) are supported.
    """
    from transformers import PreTrainedTokenizerFast

    kind = metadata.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise NotImplementedError(
            f"tokenizer.ggml.model = {kind!r}: course_lib builds byte-level BPE ('gpt2') "
            "tokenizers; load this file's tokenizer with transformers (gguf_file=...)"
        )
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in metadata["tokenizer.ggml.merges"]]
    vocab = {token: i for i, token in enumerate(tokens)}
    bpe = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if metadata.get("tokenizer.ggml.pre") in _DIGIT_SPLIT:
        bpe.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        bpe.pre_tokenizer = byte_level
    bpe.decoder = decoders.ByteLevel()
    types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    bpe.add_special_tokens(
        [
            AddedToken(t, normalized=False, special=True)
            for t, k in zip(tokens, types, strict=True)
            if k == CONTROL
        ]
    )
    bpe.add_tokens(
        [
            AddedToken(t, normalized=False, special=False)
            for t, k in zip(tokens, types, strict=True)
            if k == USER_DEFINED
        ]
    )

    def special(key: str) -> str | None:
        index = metadata.get(f"tokenizer.ggml.{key}")
        return None if index is None else tokens[index]

    bos = special("bos_token_id")
    if metadata.get("tokenizer.ggml.add_bos_token") and bos is not None:  # Llama 2/3 files
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=bos,
        eos_token=special("eos_token_id"),
        unk_token=special("unknown_token_id"),
        pad_token=special("padding_token_id"),
        chat_template=metadata.get("tokenizer.chat_template"),
        clean_up_tokenization_spaces=False,
    )
