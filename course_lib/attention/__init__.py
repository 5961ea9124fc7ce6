"""Chapter 3: the mathematics of attention, in NumPy and PyTorch.

NumPy and PyTorch functions share names and signatures; import the module you
need: ``from course_lib.attention import numpy_attention as npa`` or
``torch_attention as tta``.
"""
from . import checks, inspect, masks, numpy_attention, position, softmax, tiled, torch_attention
from .masks import causal_mask, check_attention_inputs, padding_mask
from .torch_attention import MultiHeadAttention

__all__ = ["checks", "inspect", "masks", "numpy_attention", "torch_attention", "position", "softmax", "tiled",
           "causal_mask", "padding_mask", "check_attention_inputs", "MultiHeadAttention"]
