"""Chapter 6, part 1: making training and inference cheaper, each remedy measured on our own models.

- ``precision``      mixed precision: bf16 autocast on CPU, fp16 with loss scaling on CUDA
- ``accumulation``   gradient accumulation and its loss normalisation
- ``checkpointing``  activation checkpointing of our Transformer blocks
- ``ddp``            data-parallel training with ``torch.distributed`` (``torchrun``, gloo on CPU)
- ``quantization``   int8 weight quantisation from scratch, against PyTorch and torchao
- ``pruning``        magnitude and structured pruning, against ``torch.nn.utils.prune``
- ``distillation``   knowledge distillation with soft targets and temperature
- ``cost``           the scale and cost calculator: parameters, FLOPs, memory, KV cache, GPU-days

Import the submodules directly, e.g. ``from course_lib.efficiency import cost``.
"""
