"""Chat template, loss masks, SFT loss and step against transformers and F.cross_entropy."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.finetuning import (
    IGNORE_INDEX,
    IM_END,
    apply_lora,
    chat_template_from_gguf,
    completion_mask,
    encode_chat,
    format_chatml,
    labels_from_mask,
    masked_lm_loss,
    pad_batch,
    sequence_logprobs,
    sft_step,
)

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
    [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": '{"answer": "Paris"}'},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": '{"answer": "Rome"}'},
    ],
]


@pytest.fixture(scope="module")
def smollm2_template() -> str:
    from course_lib.models import smollm2

    try:
        path = smollm2()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return chat_template_from_gguf(path)


@pytest.fixture(scope="module")
def chatml_tokenizer(smollm2_template):
    """A small byte-level BPE with ChatML's special tokens and SmolLM2's own template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    text = [m["content"] for c in CONVERSATIONS for m in c] + ["system user assistant"] * 5
    tok.train_from_iterator(text * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=IM_END, chat_template=smollm2_template
    )


@pytest.mark.parametrize("generation_prompt", [False, True])
def test_format_chatml_equals_the_gguf_template(chatml_tokenizer, generation_prompt):
    for conv in CONVERSATIONS:
        messages = conv[:-1] if generation_prompt else conv
        expected = chatml_tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
        assert format_chatml(messages, add_generation_prompt=generation_prompt) == expected


def test_encode_chat_ids_and_mask(chatml_tokenizer):
    def encode(s):
        return chatml_tokenizer.encode(s, add_special_tokens=False)

    for conv in CONVERSATIONS:
        ids, mask = encode_chat(encode, conv)
        expected = chatml_tokenizer.apply_chat_template(conv, tokenize=True, return_dict=False)
        assert ids.tolist() == list(expected)
        answers = "".join(m["content"] + IM_END for m in conv if m["role"] == "assistant")
        assert chatml_tokenizer.decode(ids[mask].tolist()) == answers


def test_encode_chat_rejects_bad_messages():
    with pytest.raises(ValueError, match="each message must be"):
        encode_chat(list, [{"role": "bot", "content": "hi"}])


def test_completion_mask_and_padding():
    mask = completion_mask(torch.tensor([2, 0, 3]), torch.tensor([4, 2, 3]), seq_len=5)
    expected = torch.tensor([[0, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    ids, m = pad_batch(
        [torch.tensor([5, 6, 7]), torch.tensor([8])],
        [torch.tensor([False, True, True]), torch.tensor([True])],
        pad_id=0,
    )
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert m.tolist() == [[False, True, True], [True, False, False]]
    with pytest.raises(ValueError, match="prompt_length <= length"):
        completion_mask(torch.tensor([3]), torch.tensor([2]), seq_len=4)


def test_masked_loss_equals_cross_entropy_with_ignore_index():
    torch.manual_seed(0)
    B, T, V = 3, 9, 11
    logits = torch.randn(B, T, V, dtype=torch.float64)
    ids = torch.randint(V, (B, T))
    mask = completion_mask(torch.tensor([3, 5, 1]), torch.tensor([9, 7, 6]), T)
    labels = labels_from_mask(ids, mask)
    assert (labels[~mask] == IGNORE_INDEX).all()
    expected = F.cross_entropy(
        logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )
    torch.testing.assert_close(masked_lm_loss(logits, ids, mask).double(), expected)
    # The summed log-likelihood of each row, from the same cross-entropy per token.
    per_token = F.cross_entropy(
        logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=IGNORE_INDEX, reduction="none"
    )
    torch.testing.assert_close(sequence_logprobs(logits, ids, mask).double(), -per_token.sum(-1))
    # Masking changes the loss: the prompt tokens are not averaged in.
    full = torch.ones_like(mask)
    assert not torch.allclose(masked_lm_loss(logits, ids, full), masked_lm_loss(logits, ids, mask))


def test_sft_step_moves_only_adapters_and_lowers_the_loss(one_thread):
    from course_lib.models import from_hf
    from course_lib.models.hf_tiny import tiny_hf_model, tiny_input_ids

    torch.manual_seed(0)
    model = from_hf(tiny_hf_model("llama"))
    frozen = {n: p.clone() for n, p in model.named_parameters()}
    apply_lora(model, ("q_proj", "k_proj", "v_proj", "o_proj"), r=4, alpha=8)
    ids = tiny_input_ids(batch=2)
    mask = completion_mask(torch.tensor([4, 6]), torch.tensor([12, 12]), ids.shape[1])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = [sft_step(model, opt, ids, mask) for _ in range(5)]
    assert losses[-1] < losses[0]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            key = name.replace(".base.", ".")
            torch.testing.assert_close(p, frozen[key], rtol=0, atol=0)


def test_greedy_reply_equals_generate_and_stops(one_thread):
    from course_lib.finetuning import greedy_reply
    from course_lib.models import from_hf, generate
    from course_lib.models.hf_tiny import tiny_hf_model, tiny_input_ids

    model = from_hf(tiny_hf_model("llama")).eval()
    prompt = tiny_input_ids(batch=1)[0]
    expected = generate(model, prompt[None], 6)[0, len(prompt) :].tolist()
    assert greedy_reply(model, prompt, stop_id=-1, max_new_tokens=6) == expected
    stop = expected[3]
    first = expected.index(stop)
    assert greedy_reply(model, prompt, stop_id=stop, max_new_tokens=6) == expected[:first]
