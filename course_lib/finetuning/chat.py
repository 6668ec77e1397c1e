"""Chat templates: how a conversation becomes one token sequence, and which tokens are trained.

SmolLM2-Instruct uses ChatML (OpenAI 2023; the template is stored in the GGUF file's
`tokenizer.chat_template`): every message is `<|im_start|>{role}\\n{content}<|im_end|>\\n`,
a default system message is inserted when the conversation has none, and a generation
prompt `<|im_start|>assistant\\n` asks the model for the next assistant turn. In supervised
fine-tuning only the assistant's content and its closing `<|im_end|>` are targets
(Ouyang et al. 2022; Tunstall et al. 2023): the model should learn to answer, not to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


def chat_template_from_gguf(path: str | Path) -> str:
    """The Jinja chat template stored in a GGUF file's `tokenizer.chat_template` field."""
    from course_lib.models.gguf_file import GGUFFile

    template = GGUFFile(path).metadata.get("tokenizer.chat_template")
    if template is None:
        raise KeyError(f"{path} has no tokenizer.chat_template: give the template yourself")
    return template


def _check(messages: Sequence[Message]) -> None:
    for i, m in enumerate(messages):
        if set(m) != {"role", "content"} or m["role"] not in ("system", "user", "assistant"):
            raise ValueError(
                f"message {i} is {m!r}: each message must be "
                "{'role': 'system'|'user'|'assistant', 'content': str}"
            )


def chat_segments(
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = False,
    default_system: str | None = SMOLLM2_SYSTEM,
) -> list[tuple[str, bool]]:
    """ChatML as (text, is_target) pieces: True only for assistant content and its `<|im_end|>`.

    The pieces joined are exactly what SmolLM2's GGUF template renders.
    """
    _check(messages)
    if default_system is not None and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": default_system}, *messages]
    pieces: list[tuple[str, bool]] = []
    for m in messages:
        pieces.append((f"{IM_START}{m['role']}\n", False))
        if m["role"] == "assistant":
            pieces += [(m["content"] + IM_END, True), ("\n", False)]
        else:
            pieces.append((m["content"] + IM_END + "\n", False))
    if add_generation_prompt:
        pieces.append((f"{IM_START}assistant\n", False))
    return pieces


def format_chatml(
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = False,
    default_system: str | None = SMOLLM2_SYSTEM,
) -> str:
    """The conversation as SmolLM2's chat template writes it (one string)."""
    pieces = chat_segments(
        messages, add_generation_prompt=add_generation_prompt, default_system=default_system
    )
    return "".join(text for text, _ in pieces)


def encode_chat(
    encode: Callable[[str], list[int]],
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = False,
    default_system: str | None = SMOLLM2_SYSTEM,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (T,) int64 and the loss mask (T,) bool (True on assistant targets).

    `encode(text) -> ids` must not add BOS/EOS (e.g. `lambda s: tok.encode(s,
    add_special_tokens=False)`). The pieces are encoded one by one, which is checked to give
    the same ids as encoding the whole string: a piece boundary inside a BPE merge would
    otherwise shift the mask.
    """
    pieces = chat_segments(
        messages, add_generation_prompt=add_generation_prompt, default_system=default_system
    )
    ids: list[int] = []
    mask: list[bool] = []
    for text, target in pieces:
        piece = list(encode(text))
        ids += piece
        mask += [target] * len(piece)
    whole = list(encode("".join(text for text, _ in pieces)))
    if whole != ids:
        raise ValueError(
            "encoding the chat piece by piece differs from encoding it whole: the tokenizer "
            "merges across a message boundary; does it know <|im_start|> and <|im_end|> as "
            "special tokens?"
        )
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.bool)


@torch.no_grad()
def greedy_reply(
    model: torch.nn.Module, prompt_ids: torch.Tensor, stop_id: int, max_new_tokens: int = 24
) -> list[int]:
    """Greedy continuation of prompt_ids (T,) with a KV cache, up to `stop_id` (not included).

    `model` is a course_lib `Transformer` (`new_cache`, `forward(ids, cache, last_only=True)`).
    """
    model.eval()
    cache = model.new_cache(1, len(prompt_ids) + max_new_tokens)
    logits = model(prompt_ids[None], cache, last_only=True)[0, -1]  # (V,)
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(logits.argmax())
        if token == stop_id:
            break
        out.append(token)
        logits = model(torch.tensor([[token]], device=prompt_ids.device), cache, last_only=True)[
            0, -1
        ]
    return out
