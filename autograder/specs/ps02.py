"""ps02 — How a language model works: BPE, causal and multi-head attention, a GPT-2 block.

The tests are the notebook's own test cells. Kept from the learner's sandbox: the grading
module's references and the course_lib tokenizer, attention, norm, activation and block they
call. Misconceptions: the attention mistakes of course_lib.grading.lm_mistakes.
"""

from autograder.misconception import Misconception
from autograder.spec import AssignmentSpec

_MISTAKES = "course_lib.grading.lm_mistakes."
_NO_SCALE = "scores not divided by sqrt(d) (the 1/sqrt(d) scaling left out)"

SPEC = AssignmentSpec(
    name="ps02",
    notebook="ps02.ipynb",
    hidden_references=(
        "course_lib.grading.lm_cases.reference_train_bpe",
        "course_lib.grading.lm_cases.reference_encode",
        "course_lib.grading.lm_cases.reference_decode",
        "course_lib.grading.lm_cases.reference_causal_attention",
        "course_lib.grading.lm_cases.reference_multi_head_attention",
        "course_lib.grading.lm_cases.reference_gpt2_block",
        "course_lib.grading.lm_cases.reference_gpt2_parameters",
        "course_lib.tokenizers.train.train_bpe",
        "course_lib.tokenizers.bpe.BPETokenizer",
        "course_lib.kernels.attention.attention",
        "course_lib.kernels.attention.attention_probs",
        "course_lib.kernels.norms.layer_norm",
        "course_lib.kernels.activations.gelu_tanh",
        "course_lib.kernels.activations.gelu_new",
        "course_lib.models.transformer.Block",
        "course_lib.models.analytics.count_parameters",
    ),
    misconceptions=(
        Misconception("causal_attention", _NO_SCALE, _MISTAKES + "causal_attention_unscaled"),
        Misconception(
            "causal_attention",
            "a softmax over the query axis instead of the key axis",
            _MISTAKES + "causal_attention_softmax_over_queries",
        ),
        Misconception("multi_head_attention", _NO_SCALE, _MISTAKES + "mha_unscaled"),
        Misconception(
            "multi_head_attention",
            "scores divided by sqrt(D), the model width, instead of sqrt(d_head)",
            _MISTAKES + "mha_scaled_by_model_width",
        ),
    ),
)
