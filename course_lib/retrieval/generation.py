"""Answer a question with a chat model, with or without retrieved passages in its prompt.

The prompt (`prompt.build_prompt`) goes in as the user's turn of the model's own chat
template; the answer is decoded greedily (`course_lib.models.generate`) and cut at the
end-of-turn token. `answer_logprob` scores a given answer instead of generating one: the
mean log-probability per token of the answer after the prompt, one forward pass, which
measures how a change of prompt (say, where the relevant passage sits) moves the model
without the noise of comparing generated strings.
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.models import Transformer, generate


def chat_input_ids(tokenizer: Any, prompt: str) -> torch.Tensor:
    """`(1, T)` token ids of `prompt` as the user's turn, followed by the assistant's header."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


@torch.no_grad()
def answer(model: Transformer, tokenizer: Any, prompt: str, max_new_tokens: int = 32) -> str:
    """The model's greedy reply to `prompt`, up to its end-of-turn token or `max_new_tokens`."""
    ids = chat_input_ids(tokenizer, prompt).to(next(model.parameters()).device)  # (1, T)
    out = generate(model, ids, max_new_tokens)[0, ids.shape[1] :].tolist()  # greedy
    if tokenizer.eos_token_id in out:
        out = out[: out.index(tokenizer.eos_token_id)]
    return tokenizer.decode(out, skip_special_tokens=True).strip()


@torch.no_grad()
def answer_logprob(model: Transformer, tokenizer: Any, prompt: str, reply: str) -> float:
    """Mean log-probability per token of `reply` as the model's answer to `prompt` (nats)."""
    context = chat_input_ids(tokenizer, prompt)  # (1, T)
    target = tokenizer(reply, return_tensors="pt", add_special_tokens=False)["input_ids"]
    ids = torch.cat([context, target], dim=1).to(next(model.parameters()).device)  # (1, T + R)
    logp = torch.log_softmax(model(ids)[0, :-1].float(), dim=-1)  # (T + R - 1, vocab)
    positions = torch.arange(context.shape[1] - 1, ids.shape[1] - 1)  # predict each reply token
    return float(logp[positions, ids[0, positions + 1]].mean())
