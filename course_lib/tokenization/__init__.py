"""Chapter 4: tokenisation (分词) — byte-pair encoding and WordPiece from scratch.

- ``pretokenizers``  split text into words (Whitespace, GPT-2 ByteLevel), equal to ``tokenizers``
- ``bpe``            BPE training / encoding / decoding, merge-for-merge equal to ``BpeTrainer``
- ``wordpiece``      BERT's basic tokenizer + greedy longest-match WordPiece (MiniLM's vocab)
- ``reference``      the Hugging Face counterparts and agreement helpers
"""
from .bpe import BPEConfig, BPETokenizer, count_pairs, count_words, merge_word, train_bpe
from .pretokenizers import (byte_level_alphabet, byte_level_decode, byte_level_split, bytes_to_unicode,
                            pre_tokenize, whitespace_split)

__all__ = ["BPEConfig", "BPETokenizer", "count_pairs", "count_words", "merge_word", "train_bpe",
           "byte_level_alphabet", "byte_level_decode", "byte_level_split", "bytes_to_unicode",
           "pre_tokenize", "whitespace_split"]
