"""ps11 — Decoding: greedy, temperature, top-k, top-p, sampling, a KV-cache decode step; part 2,
the capstone: a Llama block and model from the learner's own pieces on SmolLM2's weights.

Kept from the learner's sandbox: course_lib's sampling and attention kernels; for the
capstone, the references (course_lib's `Block` and `Transformer`, which
`llama_cases.reference_*` run), the norm, RoPE and SwiGLU kernels, and problem set 8's
references. The sandbox still reads SmolLM2's weights and tokenizer (`load_smollm2`).
Misconceptions: the sampling mistakes of course_lib.grading.sampling_mistakes.
"""

from autograder.misconception import Misconception
from autograder.spec import AssignmentSpec

_MISTAKES = "course_lib.grading.sampling_mistakes."
_CROSSING = "the token that takes the total past p left out of the nucleus (it must be kept)"

SPEC = AssignmentSpec(
    name="ps11",
    notebook="ps11.ipynb",
    hidden_references=(
        "course_lib.kernels.sampling",
        "course_lib.kernels.attention.attention",
        "course_lib.grading.llama_cases.reference_llama_block",
        "course_lib.grading.llama_cases.reference_llama_forward",
        "course_lib.grading.llama_cases.rope_tables",
        "course_lib.models.transformer.Attention",
        "course_lib.models.transformer.Block",
        "course_lib.models.transformer.Transformer",
        "course_lib.kernels.norms.rms_norm",
        "course_lib.kernels.norms.RMSNorm",
        "course_lib.kernels.rope.apply_rope",
        "course_lib.kernels.rope.rope_cos_sin",
        "course_lib.kernels.activations.GatedMLP",
        "course_lib.grading.decoder_cases.reference_rms_norm",
        "course_lib.grading.decoder_cases.reference_rope",
        "course_lib.grading.decoder_cases.reference_swiglu",
        "course_lib.grading.decoder_cases.reference_gqa_attention",
    ),
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
