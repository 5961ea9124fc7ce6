r"""WordPiece (BERT, MiniLM) from scratch: the exact pipeline of ``BertTokenizer`` / ``tokenizers``.

BERT's tokeniser (Wu et al., 2016; Devlin et al., 2019) has two stages.

**Basic tokenizer** (normaliser + pre-tokeniser), in this order:

0. *special tokens* written in the text (``[SEP]``, ``[MASK]``, ...) are cut out first and kept
   whole (exact, case-sensitive match, as Hugging Face does for "added tokens");
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

Exact parity with ``tokenizers`` needs its notion of "control", "accent" and
"punctuation" character, which comes from Unicode tables older than Python's
``unicodedata``: :mod:`.unicode_tables` stores them.  An *unassigned* code point
(U+0378) is none of the three, so it is kept and becomes ``[UNK]``.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .checks import as_id_list, check_bool, check_int, check_text, check_token
from .unicode_tables import DROPPED, MARKS, PUNCTUATION, in_table

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

    def __post_init__(self):
        self.validate()

    def validate(self) -> "WordPieceConfig":
        """Raise ``TypeError`` / ``ValueError`` naming the first setting that is not allowed."""
        check_bool(self.do_lower_case, "WordPieceConfig.do_lower_case")
        if self.strip_accents is not None:
            check_bool(self.strip_accents, "WordPieceConfig.strip_accents (or None)")
        check_bool(self.tokenize_chinese_chars, "WordPieceConfig.tokenize_chinese_chars")
        for name in ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token", "continuing_subword_prefix"):
            check_token(getattr(self, name), f"WordPieceConfig.{name}")
        check_int(self.max_input_chars_per_word, "WordPieceConfig.max_input_chars_per_word", minimum=1)
        return self

    def special_tokens(self) -> list[str]:
        """``[UNK] [CLS] [SEP] [PAD] [MASK]`` (whatever the config calls them)."""
        return [self.unk_token, self.cls_token, self.sep_token, self.pad_token, self.mask_token]


def _check_char(ch, where: str) -> str:
    if not isinstance(ch, str) or len(ch) != 1:
        raise (TypeError if not isinstance(ch, str) else ValueError)(
            f"{where} takes one character (a str of length 1), got {ch!r}; loop over the characters of a text")
    return ch


def is_cjk(ch: str) -> bool:
    """True for CJK Unified Ideographs (the blocks BERT pads with spaces; not kana or hangul).

    The ranges are those of ``tokenizers`` (``is_chinese_char``), which start the
    extension-E block at U+2B920: U+2B820..U+2B91F are *not* padded.
    """
    cp = ord(_check_char(ch, "is_cjk()"))
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B81F or 0x2B920 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def is_punctuation(ch: str) -> bool:
    """ASCII symbols such as ``$ + ^`` count as punctuation too (BERT's rule), plus Unicode P*.

    P* means: general category "punctuation" in the reference's Unicode tables
    (:mod:`.unicode_tables`), so for instance U+166D, punctuation when those tables were
    made, still counts although Python's ``unicodedata`` now calls it a symbol.
    """
    cp = ord(_check_char(ch, "is_punctuation()"))
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return cp > 127 and in_table(ch, PUNCTUATION)


def _is_whitespace(ch: str) -> bool:
    return ch.isspace()        # Unicode White_Space (control characters are removed before)


def _is_control(ch: str) -> bool:
    """Removed by clean_text: NUL, U+FFFD, categories Cc Cf Co (not \\t \\n \\r, not unassigned Cn)."""
    return in_table(ch, DROPPED)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_surrogates(text: str, where: str) -> None:
    bad = _SURROGATE.search(text)
    if bad:
        raise ValueError(f"{where}: the text holds U+{ord(bad.group()):04X}, a lone surrogate (half of a "
                         f"broken character, not valid Unicode); clean it first, e.g. "
                         f"text.encode('utf-8', 'replace').decode('utf-8')")


def basic_tokenize(text: str, cfg: WordPieceConfig | None = None) -> list[str]:
    """Steps 1-5 above: clean, pad CJK, strip accents, lowercase, split on spaces and punctuation."""
    check_text(text, "basic_tokenize()")
    if cfg is None:
        cfg = WordPieceConfig()
    elif not isinstance(cfg, WordPieceConfig):
        raise TypeError(f"basic_tokenize() takes a WordPieceConfig (or None), got {type(cfg).__name__}")
    _check_surrogates(text, "basic_tokenize()")
    # 1. clean: remove NUL / U+FFFD / control characters, map whitespace to " "
    text = "".join(" " if _is_whitespace(c) else c for c in text if not _is_control(c))
    # 2. one word per CJK ideograph
    if cfg.tokenize_chinese_chars:
        text = "".join(f" {c} " if is_cjk(c) else c for c in text)
    # 3. accents: NFD splits "é" into "e" + U+0301, then the mark (Mn) is dropped
    strip = cfg.do_lower_case if cfg.strip_accents is None else cfg.strip_accents
    if strip:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if c.isascii() or not in_table(c, MARKS))
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
        if config is not None and not isinstance(config, WordPieceConfig):
            raise TypeError(f"config must be a WordPieceConfig, got {type(config).__name__}")
        self.config = (config or WordPieceConfig()).validate()
        if not isinstance(vocab, dict) or not vocab:
            raise (ValueError if isinstance(vocab, dict) else TypeError)(
                f"vocab must be a non-empty dict {{token: id}}, got {type(vocab).__name__}; "
                f"read a vocab.txt with WordPieceTokenizer.from_pretrained(path)")
        for tok, i in vocab.items():
            if not isinstance(tok, str) or not tok:
                raise (TypeError if not isinstance(tok, str) else ValueError)(
                    f"vocab keys must be non-empty str tokens, got {tok!r}")
            check_int(i, f"vocab[{tok!r}]", minimum=0)
        self.vocab = dict(vocab)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        if len(self.id_to_token) != len(self.vocab):
            raise ValueError("vocab maps two tokens to the same id; every token needs its own id")
        missing = [t for t in (self.config.unk_token, self.config.cls_token, self.config.sep_token)
                   if t not in self.vocab]
        if missing:
            raise ValueError(f"special tokens {missing} are not in the vocabulary")
        # special tokens in the text stay whole: exact match, longest first (like HF "added tokens")
        specials = sorted({t for t in self.config.special_tokens() if t in self.vocab}, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")")

    @classmethod
    def from_pretrained(cls, path: str | Path, config: WordPieceConfig | None = None) -> "WordPieceTokenizer":
        """Read ``vocab.txt`` from a model folder (or the file itself)."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"from_pretrained() takes a folder or file path (str or Path), got {type(path).__name__}")
        path = Path(path)
        if path.is_dir():
            path = path / "vocab.txt"
        if not path.exists():
            raise ValueError(f"no vocab.txt at {path}; pass a BERT model folder or its vocab.txt")
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        if not any(tokens):
            raise ValueError(f"{path} holds no tokens; a vocab.txt has one token per line")
        return cls({t: i for i, t in enumerate(tokens)}, config)

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first segmentation of one basic-tokenised word (``""`` -> ``[]``)."""
        check_text(word, "wordpiece()")
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
        """Text -> WordPiece strings, without ``[CLS]``/``[SEP]``; ``""`` -> ``[]``.

        Special tokens written in the text (``"a[SEP]b"``) come out whole, everything
        between them goes through :func:`basic_tokenize` and :meth:`wordpiece`.
        """
        check_text(text, "tokenize()")
        _check_surrogates(text, "tokenize()")
        out: list[str] = []
        for k, piece in enumerate(self._special_re.split(text)):
            if k % 2 == 1:                          # odd pieces are the special-token matches
                out.append(piece)
            elif piece:
                out.extend(p for word in basic_tokenize(piece, self.config) for p in self.wordpiece(word))
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids, ``[CLS] tokens [SEP]`` like ``tokenizer(text)["input_ids"]`` (``""`` -> ``[CLS] [SEP]``)."""
        check_bool(add_special_tokens, "add_special_tokens")
        ids = [self.vocab[t] for t in self.tokenize(text)]
        if add_special_tokens:
            ids = [self.vocab[self.config.cls_token]] + ids + [self.vocab[self.config.sep_token]]
        return ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Ids (a list, 1-D NumPy array or torch tensor of int) -> text like
        ``tokenizers.decoders.WordPiece(prefix="##", cleanup=True)``; ``[]`` -> ``""``.

        Specials are dropped; a ``##`` piece is glued to the previous piece, any other
        piece gets a leading space; the clean-up rules (``" ?" -> "?"`` ...) are applied
        to each piece separately, so ``"what ' s"`` keeps its spaces.  The result is
        lowercased and accent-free: uncased WordPiece is not reversible.
        """
        cfg = self.config
        ids = as_id_list(ids, len(self.vocab), self.id_to_token.__contains__, "decode()")
        check_bool(skip_special_tokens, "skip_special_tokens")
        specials = set(cfg.special_tokens())
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
