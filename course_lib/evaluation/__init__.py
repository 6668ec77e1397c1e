"""Evaluating language models: multiple-choice scoring, perplexity, answer matching, ratings.

Every function that runs a model takes any callable
`model(input_ids: LongTensor (B, T)) -> logits (B, T, V)`, so a course_lib Transformer,
a Hugging Face model wrapped in a lambda, or an n-gram table all work.
"""

from course_lib.evaluation.answers import exact_match, extract_answer, normalize_number
from course_lib.evaluation.metrics import accuracy, wald_interval, wilson_interval
from course_lib.evaluation.multiple_choice import (
    MultipleChoiceItem,
    MultipleChoiceResult,
    choice_logprobs,
    evaluate_multiple_choice,
    normalize_scores,
)
from course_lib.evaluation.perplexity import (
    bits_per_character,
    perplexity,
    sliding_window_nll,
    window_spans,
)
from course_lib.evaluation.published import (
    BENCHMARK_TABLES,
    BenchmarkTable,
    benchmark_sizes,
    load_benchmark_table,
)
from course_lib.evaluation.ratings import (
    NoFiniteRatings,
    RatingInterval,
    battle_counts,
    bootstrap_ratings,
    bradley_terry,
    elo_expected,
    elo_ratings,
    elo_update,
    simulate_battles,
)

__all__ = [
    "BENCHMARK_TABLES",
    "BenchmarkTable",
    "MultipleChoiceItem",
    "MultipleChoiceResult",
    "NoFiniteRatings",
    "RatingInterval",
    "accuracy",
    "battle_counts",
    "benchmark_sizes",
    "bits_per_character",
    "bootstrap_ratings",
    "bradley_terry",
    "choice_logprobs",
    "elo_expected",
    "elo_ratings",
    "elo_update",
    "evaluate_multiple_choice",
    "exact_match",
    "extract_answer",
    "load_benchmark_table",
    "normalize_number",
    "normalize_scores",
    "perplexity",
    "simulate_battles",
    "sliding_window_nll",
    "wald_interval",
    "wilson_interval",
    "window_spans",
]
