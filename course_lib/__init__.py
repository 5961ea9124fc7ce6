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
- ``course_lib.exercises``    checkers of the implement-it exercises (workshop kit)
- ``course_lib.utils``        devices, seeds, ``show_source``, small helpers
"""

__version__ = "0.1.0"
