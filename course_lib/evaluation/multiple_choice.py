"""Multiple-choice scoring by log-likelihood under a causal language model.

Put the question in the context, append each choice, and pick the choice whose tokens get
the highest log-probability (Brown et al. 2020, §2)

    log P(choice | context) = Σ_t log p(c_t | context, c_<t).

That is how lm-evaluation-harness (Gao et al.) scores HellaSwag and ARC: the continuations
are the answer texts. Longer choices collect more negative terms, so a length-normalised
score is often used as well: divided by the number of tokens (the mean log-probability per
token) or by the number of characters ("acc_norm" of the harness, independent of the
tokenizer). MMLU is scored differently there (and in Hendrycks et al. 2021): the prompt lists
the options lettered "A. … D." and ends in "Answer:", and the continuations compared are the
letters " A", " B", " C", " D", not the answer texts; with this module, put the lettered
options in the question and pass those letters as the choices.

A model is any callable `model(input_ids: LongTensor (B, T)) -> logits (B, T, V)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from course_lib.evaluation.metrics import wilson_interval

CausalLM = Callable[[torch.Tensor], torch.Tensor]
NORMALIZATIONS = ("none", "token", "char")


def model_device(model: CausalLM) -> torch.device:
    """The device of the model's first parameter (the CPU for a parameter-free callable)."""
    parameters = getattr(model, "parameters", None)
    if parameters is not None:
        for p in parameters():
            return p.device
    return torch.device("cpu")


def choice_logprobs(
    model: CausalLM,
    context: Sequence[int],
    choices: Sequence[Sequence[int]],
    max_len: int | None = None,
) -> np.ndarray:
    """Sum of log p(choice tokens | context) for each choice, shape (n_choices,), float64.

    All choices run as one batch, right-padded: a causal model never lets a padded position
    change an earlier one. With `max_len`, the context is cut from the left to fit.
    """
    if len(context) == 0:
        raise ValueError("the context must hold at least one token to condition on")
    if not choices or any(len(c) == 0 for c in choices):
        raise ValueError("every choice needs at least one token")
    context = list(context)
    if max_len is not None:
        longest = max(len(c) for c in choices)
        if longest >= max_len:
            raise ValueError(f"a choice of {longest} tokens leaves no context in {max_len}")
        context = context[-(max_len - longest) :]
    c = len(context)
    lengths = [len(choice) for choice in choices]
    width = c + max(lengths)
    ids = torch.zeros(len(choices), width, dtype=torch.long)  # (n, T), right-padded with 0
    for i, choice in enumerate(choices):
        ids[i, : c + lengths[i]] = torch.tensor(context + list(choice))
    with torch.no_grad():
        logits = model(ids.to(model_device(model)))  # (n, T, V)
    logp = torch.log_softmax(logits.double(), dim=-1)  # (n, T, V)
    # The token at position t is predicted by the logits at position t - 1.
    targets = ids[:, 1:].to(logp.device)  # (n, T-1)
    token_logp = logp[:, :-1].gather(-1, targets[..., None])[..., 0]  # (n, T-1)
    scores = [token_logp[i, c - 1 : c - 1 + n].sum().item() for i, n in enumerate(lengths)]
    return np.array(scores, dtype=np.float64)


def normalize_scores(
    logprobs: np.ndarray,
    normalization: str = "none",
    n_tokens: Sequence[int] | None = None,
    n_chars: Sequence[int] | None = None,
) -> np.ndarray:
    """Summed log-probabilities, or divided by each choice's token or character count."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    if normalization == "none":
        return logprobs
    if normalization == "token":
        return logprobs / np.asarray(n_tokens, dtype=np.float64)
    if normalization == "char":
        return logprobs / np.asarray(n_chars, dtype=np.float64)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


@dataclass(frozen=True)
class MultipleChoiceItem:
    """One question: the prompt, the choices (each with its leading space), the answer's index."""

    question: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class MultipleChoiceResult:
    """Per-item scores (n_items, n_choices), predictions, and accuracy with its Wilson interval."""

    scores: list[np.ndarray]
    predictions: np.ndarray
    correct: np.ndarray
    accuracy: float
    interval: tuple[float, float]


def evaluate_multiple_choice(
    model: CausalLM,
    items: Sequence[MultipleChoiceItem],
    encode: Callable[[str], list[int]],
    normalization: str = "none",
    max_len: int | None = None,
    confidence: float = 0.95,
) -> MultipleChoiceResult:
    """Score every item's choices and report accuracy with a Wilson interval.

    `encode(text) -> token ids`; the context is `encode(question)` and choice i is scored
    as the continuation `encode(choices[i])`.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    all_scores, predictions = [], []
    for item in items:
        encoded = [encode(choice) for choice in item.choices]
        logprobs = choice_logprobs(model, encode(item.question), encoded, max_len=max_len)
        scores = normalize_scores(
            logprobs,
            normalization,
            n_tokens=[len(e) for e in encoded],
            n_chars=[len(choice) for choice in item.choices],
        )
        all_scores.append(scores)
        predictions.append(int(np.argmax(scores)))
    predictions = np.array(predictions, dtype=np.int64)
    correct = predictions == np.array([item.answer for item in items])
    successes = int(correct.sum())
    return MultipleChoiceResult(
        scores=all_scores,
        predictions=predictions,
        correct=correct,
        accuracy=successes / len(items),
        interval=wilson_interval(successes, len(items), confidence),
    )
