"""Post-training: chat templates, loss masks, SFT, LoRA, preference losses (DPO, GRPO).

- `format_chatml`, `chat_segments`, `encode_chat`, `chat_template_from_gguf`, `greedy_reply`: ChatML as
  SmolLM2 writes it, and the mask of the tokens an SFT loss trains on
- `completion_mask`, `pad_batch`, `labels_from_mask`, `masked_lm_loss`, `sequence_logprobs`,
  `sft_step`: supervised fine-tuning with the loss on answer tokens only
- `LoRALinear`, `apply_lora`, `merge_lora`, `unmerge_lora`, `trainable_parameters`,
  `lora_parameter_count`, `optimizer_state_bytes`: LoRA from the outside of any model
- `dpo_loss`, `grpo_advantages`, `grpo_loss`: preference optimization
"""

from course_lib.finetuning.chat import (
    IM_END,
    IM_START,
    SMOLLM2_SYSTEM,
    chat_segments,
    chat_template_from_gguf,
    encode_chat,
    format_chatml,
    greedy_reply,
)
from course_lib.finetuning.lora import (
    LoRALinear,
    apply_lora,
    lora_layers,
    lora_parameter_count,
    merge_lora,
    optimizer_state_bytes,
    trainable_parameters,
    unmerge_lora,
)
from course_lib.finetuning.preference import dpo_loss, grpo_advantages, grpo_loss
from course_lib.finetuning.sft import (
    IGNORE_INDEX,
    completion_mask,
    labels_from_mask,
    masked_lm_loss,
    pad_batch,
    sequence_logprobs,
    sft_step,
    token_logprobs,
)

__all__ = [
    "IGNORE_INDEX",
    "IM_END",
    "IM_START",
    "SMOLLM2_SYSTEM",
    "LoRALinear",
    "apply_lora",
    "chat_segments",
    "chat_template_from_gguf",
    "completion_mask",
    "dpo_loss",
    "encode_chat",
    "format_chatml",
    "grpo_advantages",
    "grpo_loss",
    "greedy_reply",
    "labels_from_mask",
    "lora_layers",
    "lora_parameter_count",
    "masked_lm_loss",
    "merge_lora",
    "optimizer_state_bytes",
    "pad_batch",
    "sequence_logprobs",
    "sft_step",
    "token_logprobs",
    "trainable_parameters",
    "unmerge_lora",
]
