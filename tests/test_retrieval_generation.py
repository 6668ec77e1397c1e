"""course_lib.retrieval.generation on a tiny random Llama with SmolLM2's real tokenizer:
the reply is the greedy KV-cache decode cut at end-of-turn, and `answer_logprob` of that reply
equals the log-probabilities the decode chose its tokens with (full forward vs cached decode)."""

from __future__ import annotations

import pytest
import torch

from course_lib.models import generate
from course_lib.retrieval import build_prompt
from course_lib.retrieval.generation import answer, answer_logprob, chat_input_ids


def test_prompt_goes_in_as_the_users_turn(tiny_chat_llama):
    _, tokenizer = tiny_chat_llama
    ids = chat_input_ids(tokenizer, build_prompt("Why?", ["a passage"], ["doc:0-9"]))
    text = tokenizer.decode(ids[0])
    assert ids.shape[0] == 1
    assert "<|im_start|>user\n" in text and "[1] (doc:0-9) a passage" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_answer_is_the_greedy_decode_and_its_logprob_matches(tiny_chat_llama, one_thread):
    model, tokenizer = tiny_chat_llama
    prompt = build_prompt("What does pass do?", ["pass is a null operation."], ["pass:0-25"])
    ids = chat_input_ids(tokenizer, prompt)
    out, logits = generate(model, ids, 6, return_logits=True)  # (1, T + 6), (1, 6, vocab)
    new = out[0, ids.shape[1] :].tolist()
    cut = new.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in new else len(new)
    reply = answer(model, tokenizer, prompt, max_new_tokens=6)
    assert reply == tokenizer.decode(new[:cut], skip_special_tokens=True).strip()
    # the greedy tokens' log-probabilities, from the cached decode's logits
    expected = torch.log_softmax(logits[0].double(), -1).max(-1).values.mean()
    text = tokenizer.decode(new)
    if tokenizer(text, add_special_tokens=False)["input_ids"] != new:
        pytest.skip("the random tokens do not survive a decode/encode round trip")
    got = answer_logprob(model, tokenizer, prompt, text)
    assert got == pytest.approx(float(expected), abs=1e-4)
