"""The offline corpus, its byte tokenizer, and the training loop of the capstone."""

from __future__ import annotations

import math
from pydoc_data.topics import topics

import torch
import torch.nn.functional as F

from course_lib.data.corpus import VOCAB_SIZE, decode, encode, pydoc_text, train_val_split
from course_lib.models import ModelConfig, Transformer
from course_lib.models.train import evaluate_loss, train_lm
from course_lib.training import get_batch


def test_corpus_is_the_pydoc_topics() -> None:
    text = pydoc_text()
    assert all(topics[name].strip() in text for name in ("if", "for", "lambda"))
    assert len(text) > 400_000  # the language reference, ~465 kB in CPython 3.11+


def test_byte_tokenizer_round_trip() -> None:
    text = "naïve café — λx: x²"
    ids = encode(text)
    assert ids.dtype == torch.int64 and int(ids.max()) < VOCAB_SIZE
    assert ids.tolist() == list(text.encode("utf-8"))
    assert decode(ids) == text
    assert decode([0xC3]) == "\ufffd"  # half a character


def test_split_and_windows() -> None:
    ids = torch.arange(1000)
    train, val = train_val_split(ids, 0.1)
    assert len(train) == 900 and torch.equal(torch.cat([train, val]), ids)
    x, y = get_batch(train, 4, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(y, x + 1)  # targets are the next tokens


def test_training_lowers_the_loss_on_a_repetitive_stream() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=VOCAB_SIZE, d_model=32, n_layers=1, n_heads=2, d_ff=64, max_seq_len=64
    )
    model = Transformer(cfg, device="cpu")
    ids = encode("the cat sat on the mat. " * 200)
    before = evaluate_loss(model, ids, seq_len=32)
    assert abs(before - math.log(VOCAB_SIZE)) < 0.5  # random init: close to uniform
    log = train_lm(model, ids, ids, steps=60, batch_size=8, seq_len=32, lr=1e-2, progress=False)
    assert log.steps == 60 and len(log.val_losses) >= 1
    assert log.lrs[0] == 0.0 and math.isclose(log.lrs[20], 1e-2)  # warm-up from 0 over 20 steps
    assert log.val_losses[-1][1] < 0.5 * before
    # evaluate_loss is the plain cross-entropy of the model's next-token logits
    x, y = get_batch(ids, 16, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    assert math.isclose(evaluate_loss(model, ids, seq_len=32), expected, rel_tol=1e-5)


def test_time_budget_stops_early() -> None:
    cfg = ModelConfig(
        vocab_size=VOCAB_SIZE, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_seq_len=32
    )
    log = train_lm(
        Transformer(cfg, device="cpu"), encode("abc" * 100), steps=10_000, seq_len=16,
        time_budget_s=0.0, progress=False,
    )  # fmt: skip
    assert log.steps == 1
