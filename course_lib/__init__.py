"""course_lib: the companion package of *Large Models for NLP — from NumPy to GPU*.

One subpackage per chapter concept. Chapters 2-5 import only from chapters before them, with one
exception: chapter 2's shipped vectors are verified by chapter 4's checkpoint checksum code. Chapter 1,
the overview, reuses later chapters' models (its baselines and its service).

- ``course_lib.data``         offline datasets and pretrained weights (checksummed)
- ``course_lib.baselines``    chapter 1: classical baselines of the eight task families
- ``course_lib.serving``      chapter 1: the course's models as an HTTP service with dynamic batching
- ``course_lib.embeddings``   chapter 2: Word2Vec, GloVe, FastText, evaluation, shipped vectors
- ``course_lib.attention``    chapter 3: softmax, attention, masks, positions, tiling
- ``course_lib.tokenization`` chapter 4: BPE and WordPiece from scratch
- ``course_lib.transformer``  chapter 4: blocks, BERT, GPT-2, Llama, encoder-decoder, decoding (and the
  scaling experiment of chapter 1)
- ``course_lib.pretraining``  chapter 5: masked LM, NSP, span corruption, pre-training heads
- ``course_lib.finetuning``   chapter 5: classification, NER, LoRA, the training loop, the Trainer route
- ``course_lib.efficiency``   chapter 6: mixed precision, accumulation, checkpointing, data parallelism,
  quantisation, pruning, distillation, the cost calculator
- ``course_lib.challenges``   chapter 6: class imbalance, overfitting, model choice, interpretability,
  Chinese text
- ``course_lib.exercises``    checkers of the implement-it exercises (workshop kit)
- ``course_lib.utils``        devices, seeds, ``show_source``, small helpers
"""

__version__ = "0.1.0"

import logging as _logging

# transformers and peft import torchao (chapter 6) whenever it is installed. On a machine without
# the GPU kernels it was built with, torchao logs "Failed to load ..." for each of them, and torch
# logs a deprecation note for two of its enums: nothing a learner can act on, so they are silenced.
for _name in ("torchao", "torch.utils._pytree"):
    _logging.getLogger(_name).setLevel(_logging.ERROR)
del _name
