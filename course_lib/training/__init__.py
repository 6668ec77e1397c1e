"""Training a language model from first principles, one module per concern.

- `cross_entropy` (loss.py): log-sum-exp cross-entropy with `ignore_index`
- `AdamW`, `param_groups` (adamw.py): Loshchilov & Hutter's AdamW; 1-D params not decayed
- `cosine_lr` (schedule.py): linear warm-up from 0, cosine decay, floor
- `clip_grad_norm` (clip.py): clipping by global norm
- `get_batch` (batches.py): uniform random windows of a token array (numpy memmap works)
- `save_checkpoint`, `load_checkpoint` (checkpoint.py): bit-identical resume
- `model_flops_per_token`, `measured_peak_flops` (throughput.py): tokens/s and MFU
- `TrainConfig`, `TrainLog`, `train_step`, `evaluate_loss`, `train` (loop.py): the loop
- `scaling_sweep`, `SweepRun`, `non_embedding_params` (sweep.py): a grid of runs for a
  scaling law, one full schedule per (N, D). Import them from `course_lib.training.sweep`:
  the package does not load that module, so ps03's sandbox, which replaces the modules
  above with tripwires, is not handed real loop objects through it.
"""

from course_lib.training.adamw import AdamW, param_groups
from course_lib.training.batches import get_batch
from course_lib.training.checkpoint import load_checkpoint, save_checkpoint
from course_lib.training.clip import clip_grad_norm
from course_lib.training.loop import TrainConfig, TrainLog, evaluate_loss, train, train_step
from course_lib.training.loss import cross_entropy
from course_lib.training.schedule import cosine_lr
from course_lib.training.throughput import measured_peak_flops, model_flops_per_token

__all__ = [
    "AdamW",
    "TrainConfig",
    "TrainLog",
    "clip_grad_norm",
    "cosine_lr",
    "cross_entropy",
    "evaluate_loss",
    "get_batch",
    "load_checkpoint",
    "measured_peak_flops",
    "model_flops_per_token",
    "param_groups",
    "save_checkpoint",
    "train",
    "train_step",
]
