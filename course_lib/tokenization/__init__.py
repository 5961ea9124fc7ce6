"""Chapter 4: tokenisation (分词) — byte-pair encoding and WordPiece from scratch.

- ``pretokenizers``  split text into words (Whitespace, GPT-2 ByteLevel), equal to ``tokenizers``
- ``bpe``            BPE training, merge-for-merge equal to ``BpeTrainer``
- ``bpe_tokenizer``  a trained BPE: O(n log n) encoding with a merge queue, decoding
- ``wordpiece``      BERT's basic tokenizer + greedy longest-match WordPiece (MiniLM's vocab)
- ``checks``         the input checks every public function runs first
- ``reference``      the Hugging Face counterparts and agreement helpers
"""
from .bpe import BPEConfig, count_pairs, count_words, merge_word, train_bpe
from .bpe_tokenizer import BPETokenizer, apply_merges
from .pretokenizers import (byte_level_alphabet, byte_level_decode, byte_level_split, bytes_to_unicode,
                            pre_tokenize, whitespace_split)

__all__ = ["BPEConfig", "BPETokenizer", "apply_merges", "count_pairs", "count_words", "merge_word", "train_bpe",
           "byte_level_alphabet", "byte_level_decode", "byte_level_split", "bytes_to_unicode",
           "pre_tokenize", "whitespace_split"]
