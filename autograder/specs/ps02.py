"""ps02 — How a language model works: BPE, causal and multi-head attention, a GPT-2 block.

The tests are the notebook's own test cells. Kept from the learner's sandbox: the grading
module's references and the course_lib tokenizer, attention, norm, activation and block they
call.
"""

from autograder.spec import AssignmentSpec

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
)
