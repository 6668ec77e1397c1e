"""The hot kernels of course_lib in Triton: FlashAttention forward, RMSNorm, row softmax.

On a CUDA GPU they run compiled. On a CPU they run only in Triton's interpreter, which reads
TRITON_INTERPRET=1 when the `@triton.jit` functions are defined: set it before importing
this package. Importing needs the `triton` package; `course_lib.kernels.dispatch` decides
when these kernels are used.
"""

from course_lib.kernels.triton.flash_attn import flash_attention_triton
from course_lib.kernels.triton.rmsnorm import rms_norm_triton
from course_lib.kernels.triton.softmax import softmax_triton

__all__ = ["flash_attention_triton", "rms_norm_triton", "softmax_triton"]
