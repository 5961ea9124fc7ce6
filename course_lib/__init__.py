"""course_lib: the companion package of *Large Models for NLP — from NumPy to GPU*.

One subpackage per chapter concept; chapter N imports only from chapters before it.

- ``course_lib.data``       offline datasets and pretrained weights (checksummed)
- ``course_lib.embeddings`` chapter 2: Word2Vec, GloVe, FastText, evaluation
- ``course_lib.attention``  chapter 3: softmax, attention, masks, positions, tiling
- ``course_lib.tokenization`` chapter 4: BPE and WordPiece from scratch
- ``course_lib.transformer`` chapter 4: blocks, BERT, GPT-2, Llama, encoder-decoder, decoding
- ``course_lib.utils``      devices, seeds, small helpers
"""

__version__ = "0.1.0"
