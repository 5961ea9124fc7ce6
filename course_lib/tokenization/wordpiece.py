r"""WordPiece (BERT, MiniLM) from scratch: the exact pipeline of ``BertTokenizer`` / ``tokenizers``.

BERT's tokeniser (Wu et al., 2016; Devlin et al., 2019) has two stages.

**Basic tokenizer** (normaliser + pre-tokeniser), in this order:

1. *clean text*: drop NUL, U+FFFD and control characters; every whitespace character becomes ``" "``;
2. *CJK characters*: put spaces around every CJK ideograph, so ``北京`` -> ``北 京``
   (Chinese is tokenised character by character);
3. *strip accents*: Unicode NFD decomposition, then drop combining marks (category Mn):
   ``naïve`` -> ``naive``;
4. *lowercase* (the "uncased" models);
5. split on whitespace, then cut every punctuation character out as its own word
   (``"don't"`` -> ``don ' t``).

**WordPiece** on each word: greedy *longest match first*.  Take the longest prefix
of the word that is in the vocabulary, emit it, and continue with the rest, whose
pieces are looked up with the ``##`` prefix (``##able``: "continues a word").  If
some remainder has no matching piece, the *whole word* becomes ``[UNK]``; words
longer than ``max_input_chars_per_word`` (100) are ``[UNK]`` too.

Unlike BPE there are no merge ranks: the vocabulary alone defines the
segmentation, which is why ``vocab.txt`` is all that ships with BERT.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

# tokenizers' decoder clean-up: (" .", "."), (" n't", "n't"), ...
_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]

__all__ = ["WordPieceConfig", "WordPieceTokenizer", "basic_tokenize", "is_cjk", "is_punctuation"]


@dataclass
class WordPieceConfig:
    """Settings named like ``transformers.BertTokenizer`` / ``tokenizers.models.WordPiece``."""
    do_lower_case: bool = True
    strip_accents: bool | None = None        # None: strip when lowercasing (BERT's rule)
    tokenize_chinese_chars: bool = True
    unk_token: str = "[UNK]"
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"
    mask_token: str = "[MASK]"
    continuing_subword_prefix: str = "##"
    max_input_chars_per_word: int = 100


def is_cjk(ch: str) -> bool:
    """True for CJK Unified Ideographs (the blocks BERT pads with spaces; not kana or hangul)."""
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def is_punctuation(ch: str) -> bool:
    """ASCII symbols such as ``$ + ^`` count as punctuation too (BERT's rule), plus Unicode P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_whitespace(ch: str) -> bool:
    return ch.isspace()        # Unicode White_Space (control characters are removed before)


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def basic_tokenize(text: str, cfg: WordPieceConfig | None = None) -> list[str]:
    """Steps 1-5 above: clean, pad CJK, strip accents, lowercase, split on spaces and punctuation."""
    cfg = cfg or WordPieceConfig()
    # 1. clean: remove NUL / U+FFFD / control characters, map whitespace to " "
    text = "".join(" " if _is_whitespace(c) else c for c in text
                   if not (ord(c) == 0 or ord(c) == 0xFFFD or _is_control(c)))
    # 2. one word per CJK ideograph
    if cfg.tokenize_chinese_chars:
        text = "".join(f" {c} " if is_cjk(c) else c for c in text)
    # 3. accents: NFD splits "é" into "e" + U+0301, then the mark (Mn) is dropped
    strip = cfg.do_lower_case if cfg.strip_accents is None else cfg.strip_accents
    if strip:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    # 4. lowercase, character by character (no context rule such as the final sigma)
    if cfg.do_lower_case:
        text = "".join(c.lower() for c in text)
    # 5. whitespace split, then every punctuation character is a word of its own
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for c in chunk:
            if is_punctuation(c):
                if current:
                    words.append(current)
                words.append(c)
                current = ""
            else:
                current += c
        if current:
            words.append(current)
    return words


class WordPieceTokenizer:
    """BERT-style WordPiece tokeniser reading a ``vocab.txt`` (one token per line, id = line number).

    Examples
    --------
    >>> from course_lib.data import minilm_path                        # doctest: +SKIP
    >>> tok = WordPieceTokenizer.from_pretrained(minilm_path())         # doctest: +SKIP
    >>> tok.tokenize("Tokenisation is unaffable")                       # doctest: +SKIP
    ['token', '##isation', 'is', 'una', '##ffa', '##ble']
    """

    def __init__(self, vocab: dict[str, int], config: WordPieceConfig | None = None):
        self.config = config or WordPieceConfig()
        self.vocab = dict(vocab)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        missing = [t for t in (self.config.unk_token, self.config.cls_token, self.config.sep_token)
                   if t not in self.vocab]
        if missing:
            raise ValueError(f"special tokens {missing} are not in the vocabulary")

    @classmethod
    def from_pretrained(cls, path: str | Path, config: WordPieceConfig | None = None) -> "WordPieceTokenizer":
        """Read ``vocab.txt`` from a model folder (or the file itself)."""
        path = Path(path)
        if path.is_dir():
            path = path / "vocab.txt"
        if not path.exists():
            raise ValueError(f"no vocab.txt at {path}; pass a BERT model folder or its vocab.txt")
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        return cls({t: i for i, t in enumerate(tokens)}, config)

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first segmentation of one basic-tokenised word."""
        cfg = self.config
        if len(word) > cfg.max_input_chars_per_word:
            return [cfg.unk_token]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:                        # try the longest candidate first
                piece = word[start:end]
                if start > 0:
                    piece = cfg.continuing_subword_prefix + piece   # "##" = continues a word
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:                          # no piece fits: the whole word is unknown
                return [cfg.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece strings, without ``[CLS]``/``[SEP]``."""
        if not isinstance(text, str):
            raise ValueError(f"tokenize() takes a str, got {type(text).__name__}")
        return [p for word in basic_tokenize(text, self.config) for p in self.wordpiece(word)]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids, ``[CLS] tokens [SEP]`` like ``tokenizer(text)["input_ids"]``."""
        ids = [self.vocab[t] for t in self.tokenize(text)]
        if add_special_tokens:
            ids = [self.vocab[self.config.cls_token]] + ids + [self.vocab[self.config.sep_token]]
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text like ``tokenizers.decoders.WordPiece(prefix="##", cleanup=True)``.

        Specials are dropped; a ``##`` piece is glued to the previous piece, any other
        piece gets a leading space; the clean-up rules (``" ?" -> "?"`` ...) are applied
        to each piece separately, so ``"what ' s"`` keeps its spaces.  The result is
        lowercased and accent-free: uncased WordPiece is not reversible.
        """
        cfg = self.config
        specials = {cfg.cls_token, cfg.sep_token, cfg.pad_token, cfg.mask_token, cfg.unk_token}
        bad = [i for i in ids if i not in self.id_to_token]
        if bad:
            raise ValueError(f"unknown token ids {bad[:5]} (vocabulary has {len(self.vocab)} ids)")
        toks = [self.id_to_token[i] for i in ids]
        if skip_special_tokens:
            toks = [t for t in toks if t not in specials]
        pieces = []
        for k, tok in enumerate(toks):
            if k > 0:
                tok = tok[len(cfg.continuing_subword_prefix):] if tok.startswith(cfg.continuing_subword_prefix) \
                    else " " + tok
            for before, after in _CLEANUP:
                tok = tok.replace(before, after)
            pieces.append(tok)
        return "".join(pieces)

    def __len__(self) -> int:
        return len(self.vocab)
