"""course_lib: the companion package of *Large Models for NLP — from NumPy to GPU*.

One subpackage per chapter concept; chapter N imports only from chapters before it.

- ``course_lib.data``       offline datasets and pretrained weights (checksummed)
- ``course_lib.attention``  chapter 3: softmax, attention, masks, positions, tiling
- ``course_lib.utils``      devices, seeds, small helpers
"""

__version__ = "0.1.0"
