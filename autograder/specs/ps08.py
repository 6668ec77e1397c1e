"""ps08 — The decoder block: RMSNorm, RoPE, SwiGLU, GQA with a window, a rolling KV cache,
per-head QK-norm before RoPE (and a written question on attention sinks, graded by hand).

Kept from the learner's sandbox: the grading module's reference functions and the
course_lib kernels they call.
"""

from autograder.misconception import Misconception
from autograder.spec import AssignmentSpec

_MISTAKES = "course_lib.grading.decoder_mistakes."

SPEC = AssignmentSpec(
    name="ps08",
    notebook="ps08.ipynb",
    hidden_references=(
        "course_lib.grading.decoder_cases.reference_rms_norm",
        "course_lib.grading.decoder_cases.reference_rope",
        "course_lib.grading.decoder_cases.reference_swiglu",
        "course_lib.grading.decoder_cases.reference_gqa_attention",
        "course_lib.grading.decoder_cases.reference_rolling_decode",
        "course_lib.grading.decoder_cases.reference_qk_norm_rope",
        "course_lib.grading.decoder_cases.llama_ffn_hidden",
        "course_lib.kernels.norms.rms_norm",
        "course_lib.kernels.norms.qk_norm",
        "course_lib.kernels.norms.QKNorm",
        "course_lib.kernels.rope.apply_rope",
        "course_lib.kernels.rope.rope_cos_sin",
        "course_lib.kernels.attention.attention",
        "course_lib.grading.decoder_mistakes",
    ),
    misconceptions=(
        Misconception(
            "rms_norm",
            "LayerNorm (mean subtracted) instead of RMSNorm",
            _MISTAKES + "layer_norm_for_rms_norm",
        ),
        Misconception(
            "gqa_attention",
            "K/V heads tiled with `repeat` instead of grouped with `repeat_interleave`",
            _MISTAKES + "gqa_tiled_heads",
        ),
        Misconception(
            "gqa_attention",
            "a softmax over the query axis instead of the key axis",
            _MISTAKES + "softmax_over_queries",
        ),
        Misconception(
            "qk_norm_rope",
            "the RMSNorm applied after RoPE instead of before (the gain does not commute "
            "with the rotation)",
            _MISTAKES + "qk_norm_after_rope",
        ),
        Misconception(
            "qk_norm_rope",
            "one RMSNorm over the whole projection (OLMo 2) instead of one per head",
            _MISTAKES + "qk_norm_whole_projection",
        ),
    ),
)
