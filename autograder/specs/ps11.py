"""ps11 — Decoding: greedy, temperature, top-k, top-p, sampling, a KV-cache decode step.

Kept from the learner's sandbox: course_lib's sampling and attention kernels.
Misconceptions: the sampling mistakes of course_lib.grading.sampling_mistakes.
"""

from autograder.misconception import Misconception
from autograder.spec import AssignmentSpec

_MISTAKES = "course_lib.grading.sampling_mistakes."
_CROSSING = "the token that takes the total past p left out of the nucleus (it must be kept)"

SPEC = AssignmentSpec(
    name="ps11",
    notebook="ps11.ipynb",
    hidden_references=("course_lib.kernels.sampling", "course_lib.kernels.attention.attention"),
    misconceptions=(
        Misconception(
            "temperature_probs",
            "the logits multiplied by the temperature instead of divided",
            _MISTAKES + "temperature_multiplied",
        ),
        Misconception(
            "temperature_probs",
            "the temperature applied after the softmax (to the probabilities, not the logits)",
            _MISTAKES + "temperature_after_softmax",
        ),
        Misconception("top_p_probs", _CROSSING, _MISTAKES + "top_p_without_crossing_token"),
        Misconception(
            "top_p_probs", _CROSSING, _MISTAKES + "top_p_without_crossing_token_top_kept"
        ),
        Misconception(
            "top_p_probs",
            "the nucleus chosen before dividing the logits by the temperature",
            _MISTAKES + "top_p_before_temperature",
        ),
    ),
)
