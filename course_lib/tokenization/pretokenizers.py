r"""Pre-tokenisation (预分词): cut raw text into *words* before any subword model runs.

A subword model such as BPE never sees a whole document: the text is first split
into pieces, and merges only happen *inside* a piece.  Two splitters cover most
modern tokenisers, and both reproduce Hugging Face ``tokenizers`` exactly:

``whitespace``
    The regular expression ``\w+|[^\w\s]+`` (``tokenizers.pre_tokenizers.Whitespace``):
    runs of word characters, or runs of punctuation; spaces are dropped.  The
    space information is lost, so decoding can only re-join tokens with spaces.

``byte_level``
    GPT-2's scheme (``tokenizers.pre_tokenizers.ByteLevel(use_regex=True)``):
    the GPT-2 regex keeps a leading space inside the next word
    (``" world"``), then every UTF-8 *byte* of a piece is written as one
    printable character.  The 256-symbol alphabet covers every possible input,
    so there is never an unknown token and ``decode(encode(text)) == text``.

Unicode detail that matters for exact parity: Python's built-in ``re`` treats
``\w`` as "alphanumeric", so it excludes combining marks (the vowel signs of
Devanagari ``ि``, the accent of a decomposed ``é``) and includes vulgar fractions
(``½``).  Rust's Oniguruma (used by ``tokenizers``) follows the Unicode
definition: letters, marks, decimal digits, connector punctuation.  The
``regex`` package (already a dependency of ``transformers``) implements the
Unicode definition, so we use it.
"""
from __future__ import annotations

from functools import lru_cache

import regex

from .checks import check_bool, check_text

__all__ = ["whitespace_split", "bytes_to_unicode", "byte_level_alphabet", "byte_level_split",
           "byte_level_decode", "PRE_TOKENIZERS", "pre_tokenize"]

# \w = Unicode word characters (letters, marks, decimal digits, connector punctuation).
_WHITESPACE_RE = regex.compile(r"\w+|[^\w\s]+")

# GPT-2's pattern: English contractions, letters, numbers, other symbols, each with
# an optional leading space; trailing whitespace stays separate.
_GPT2_RE = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def whitespace_split(text: str) -> list[str]:
    """Split like ``tokenizers.pre_tokenizers.Whitespace``: ``\\w+|[^\\w\\s]+``.

    >>> whitespace_split("Hello, world!  It's 3.5 km")
    ['Hello', ',', 'world', '!', 'It', "'", 's', '3', '.', '5', 'km']
    """
    check_text(text, "whitespace_split()")
    return _WHITESPACE_RE.findall(text)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Printable Latin-1 bytes map to themselves; the 68 others (control bytes, space,
    ...) map to code points 256, 257, ... in order, so a space (byte 32) becomes
    ``'Ġ'`` (U+0120) and a newline becomes ``'Ċ'``.
    """
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    mapping, extra = {}, 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@lru_cache(maxsize=1)
def _byte_translation() -> dict[int, str]:
    """``str.translate`` table: character ``chr(b)`` (byte ``b`` read as Latin-1) -> ``bytes_to_unicode()[b]``."""
    return {b: c for b, c in bytes_to_unicode().items()}


def byte_level_alphabet() -> list[str]:
    """The 256 characters of the byte-level alphabet (= ``ByteLevel.alphabet()``), sorted."""
    return sorted(bytes_to_unicode().values())


def byte_level_split(text: str, add_prefix_space: bool = False) -> list[str]:
    """Split like ``tokenizers.pre_tokenizers.ByteLevel(add_prefix_space, use_regex=True)``.

    >>> byte_level_split("Hello world!")
    ['Hello', 'Ġworld', '!']

    ``add_prefix_space`` prepends a space to a *non-empty* text that does not start
    with one (``tokenizers`` leaves ``""`` empty), so ``""`` gives ``[]`` either way.
    """
    check_text(text, "byte_level_split()")
    check_bool(add_prefix_space, "add_prefix_space")
    if add_prefix_space and text and not text.startswith(" "):
        text = " " + text
    table = _byte_translation()
    try:       # bytes -> one Latin-1 character per byte -> GPT-2's printable character
        return [piece.encode("utf-8").decode("latin-1").translate(table) for piece in _GPT2_RE.findall(text)]
    except UnicodeEncodeError as err:
        bad = err.object[err.start]
        raise ValueError(f"text holds U+{ord(bad):04X}, a lone surrogate that has no UTF-8 bytes; clean the "
                         f"text first, e.g. text.encode('utf-8', 'replace').decode('utf-8')") from None


def byte_level_decode(tokens: list[str]) -> str:
    """Inverse of the byte mapping: concatenate, map characters back to bytes, UTF-8 decode.

    Invalid byte sequences (a token that ends in the middle of a character) become
    U+FFFD, as in ``tokenizers.decoders.ByteLevel``.
    """
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(f"byte_level_decode() takes a list of token strings, got {type(tokens).__name__}")
    bad = [t for t in tokens if not isinstance(t, str)]
    if bad:
        raise TypeError(f"byte_level_decode() takes token strings, got {type(bad[0]).__name__} {bad[0]!r}; "
                        f"to decode ids use BPETokenizer.decode(ids)")
    inverse = {c: b for b, c in bytes_to_unicode().items()}
    data = bytearray()
    for tok in tokens:
        if all(c in inverse for c in tok):
            data.extend(inverse[c] for c in tok)
        else:                                       # e.g. a special token: keep its own bytes
            data.extend(tok.encode("utf-8"))
    return data.decode("utf-8", errors="replace")


PRE_TOKENIZERS = {"whitespace": whitespace_split, "byte_level": byte_level_split}


def pre_tokenize(text: str, kind: str = "whitespace", add_prefix_space: bool = False) -> list[str]:
    """Dispatch to :func:`whitespace_split` or :func:`byte_level_split` by name."""
    check_text(text, "pre_tokenize()")
    if kind == "whitespace":
        return whitespace_split(text)
    if kind == "byte_level":
        return byte_level_split(text, add_prefix_space)
    raise ValueError(f"pre_tokenizer must be one of {sorted(PRE_TOKENIZERS)}, got {kind!r}")
