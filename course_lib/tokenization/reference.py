"""The reference side: the same tokenisers built with Hugging Face ``tokenizers`` / ``transformers``.

Kept apart from the from-scratch code so that a reader sees exactly which library
objects we compare against, with which settings.
"""
from __future__ import annotations

import json
from typing import Iterable, Sequence

from .bpe import BPEConfig, _check_config
from .bpe_tokenizer import BPETokenizer
from .checks import check_texts

__all__ = ["hf_bpe", "train_hf_bpe", "hf_merges", "to_hf_tokenizer", "merge_agreement",
           "sequence_agreement", "load_minilm_tokenizer"]


def hf_bpe(cfg: BPEConfig):
    """An untrained ``tokenizers.Tokenizer`` with a BPE model and the matching ``BpeTrainer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    cfg = _check_config(cfg, "hf_bpe()")
    tok = Tokenizer(models.BPE(unk_token=cfg.unk_token))
    if cfg.pre_tokenizer == "whitespace":
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    elif cfg.pre_tokenizer == "byte_level":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=cfg.add_prefix_space, use_regex=True)
        tok.decoder = decoders.ByteLevel()
    else:
        raise ValueError(f"pre_tokenizer must be 'whitespace' or 'byte_level', got {cfg.pre_tokenizer!r}")
    return tok, trainers.BpeTrainer(**cfg.trainer_kwargs())


def train_hf_bpe(texts: Iterable[str], cfg: BPEConfig):
    """Train the Hugging Face BPE on ``texts`` with the settings of ``cfg``."""
    tok, trainer = hf_bpe(cfg)
    tok.train_from_iterator(check_texts(texts, "train_hf_bpe()"), trainer)
    return tok


def hf_merges(tok) -> list[tuple[str, str]]:
    """The merge list of a trained ``tokenizers`` BPE, in rank order."""
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def to_hf_tokenizer(ours: BPETokenizer):
    """Load *our* vocabulary and merges into a ``tokenizers`` BPE (proof that they are usable)."""
    from tokenizers import models
    if not isinstance(ours, BPETokenizer) or not ours.vocab:
        raise TypeError(f"to_hf_tokenizer() takes a trained BPETokenizer, got {type(ours).__name__}")
    tok, _ = hf_bpe(ours.config)
    tok.model = models.BPE(vocab=dict(ours.vocab), merges=list(ours.merges), unk_token=ours.config.unk_token)
    tok.add_special_tokens(list(ours.config.special_tokens))
    return tok


def merge_agreement(ours: Sequence, theirs: Sequence, n: int | None = None) -> float:
    """Fraction of the first ``n`` ranks where both merge lists hold the same pair."""
    for name, seq in (("ours", ours), ("theirs", theirs)):
        if isinstance(seq, str) or not isinstance(seq, Sequence):
            raise TypeError(f"merge_agreement() takes two merge lists, got {type(seq).__name__} for {name}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise TypeError(f"merge_agreement() needs n to be an int or None, got {type(n).__name__}")
    n = min(len(ours), len(theirs)) if n is None else n
    if n < 1:
        raise ValueError(f"merge_agreement needs n > 0 and non-empty merge lists, got n={n}")
    ours, theirs = list(ours[:n]), list(theirs[:n])
    return sum(a == b for a, b in zip(ours, theirs)) / n


def sequence_agreement(ours: Sequence[Sequence], theirs: Sequence[Sequence]) -> float:
    """Fraction of texts whose token sequences are identical."""
    for name, seq in (("ours", ours), ("theirs", theirs)):
        if isinstance(seq, str) or not isinstance(seq, Sequence):
            raise TypeError(f"sequence_agreement() takes two lists of token sequences, got {type(seq).__name__} "
                            f"for {name}")
    if len(ours) != len(theirs) or not ours:
        raise ValueError(f"need two equally long, non-empty lists, got {len(ours)} and {len(theirs)}")
    return sum(list(a) == list(b) for a, b in zip(ours, theirs)) / len(ours)


def load_minilm_tokenizer():
    """The real all-MiniLM-L6-v2 tokenizer (``transformers.AutoTokenizer``), offline."""
    from transformers import AutoTokenizer
    from ..data import minilm_path
    return AutoTokenizer.from_pretrained(str(minilm_path()))


def bert_char_classes() -> dict[str, list[tuple[int, int]]]:
    """Probe ``tokenizers``' BERT normaliser and pre-tokeniser over every code point (about 30 s).

    Returns inclusive code-point ranges of the characters it *drops* (``clean_text``: NUL,
    U+FFFD, control / format / private-use), *strips* (non-spacing marks, after NFD) and
    *splits off* (punctuation).  :mod:`course_lib.tokenization.unicode_tables` stores the
    result; :func:`write_unicode_tables` regenerates that file.
    """
    import unicodedata
    from tokenizers import normalizers, pre_tokenizers
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                       lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    split = pre_tokenizers.BertPreTokenizer()
    found: dict[str, list[int]] = {"dropped": [], "marks": [], "punctuation": []}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:                      # surrogates cannot reach Rust strings
            continue
        ch, text = chr(cp), f"x{chr(cp)}y"
        if clean.normalize_str(text) == "xy":
            found["dropped"].append(cp)
        if unicodedata.normalize("NFD", ch) == ch and strip.normalize_str(text) == "xy":
            found["marks"].append(cp)
        if len(split.pre_tokenize_str(text)) == 3:
            found["punctuation"].append(cp)
    out: dict[str, list[tuple[int, int]]] = {}
    for name, cps in found.items():
        ranges: list[list[int]] = []
        for cp in cps:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
        out[name] = [(a, b) for a, b in ranges]
    return out


def write_unicode_tables(path=None) -> str:
    """Regenerate ``course_lib/tokenization/unicode_tables.py`` from :func:`bert_char_classes`."""
    import tokenizers
    from pathlib import Path
    path = Path(path) if path is not None else Path(__file__).with_name("unicode_tables.py")
    classes = bert_char_classes()
    lines = [line.rstrip() for line in _TABLES_HEADER.format(version=tokenizers.__version__).splitlines()]
    for name, ranges in classes.items():
        words = [f"{a:04X}" if a == b else f"{a:04X}-{b:04X}" for a, b in ranges]
        lines.append(f"{name.upper()} = _parse(")
        row = ""
        for w in words:
            if len(row) + len(w) + 1 > 96:
                lines.append(f'    "{row}"')
                row = ""
            row += w + " "
        lines.append(f'    "{row}")')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


_TABLES_HEADER = '''"""Character classes of BERT's tokeniser *as Hugging Face tokenizers {version} computes them*.

Generated by ``course_lib.tokenization.reference.write_unicode_tables()`` (do not edit by hand).

Why a table: BERT's basic tokenizer asks "is this character a control character, a
non-spacing mark (accent), punctuation?".  Python answers from ``unicodedata``, whose
Unicode version follows the Python release (Unicode 14 in Python 3.11); ``tokenizers``
answers from tables compiled into its Rust code, which are older.  Characters added to
Unicode since then are *unassigned* for ``tokenizers``: neither dropped, nor stripped,
nor split off -- a few hundred marks and punctuation signs of newer scripts.  A
few characters also changed category (U+166D was punctuation, U+1734 a non-spacing
mark).  Using Python's answers would give different ids on exactly those characters, so
we store the reference's answers: inclusive ranges of code points, as hexadecimal text.

- ``DROPPED``      removed by ``clean_text`` (NUL, U+FFFD, control, format, private use)
- ``MARKS``        removed by ``strip_accents`` after NFD (non-spacing marks, Mn)
- ``PUNCTUATION``  cut out as words of their own (ASCII symbols and Unicode P*)
"""
from __future__ import annotations

from bisect import bisect_right

__all__ = ["DROPPED", "MARKS", "PUNCTUATION", "in_table"]


def _parse(spec: str) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for item in spec.split():
        a, _, b = item.partition("-")
        starts.append(int(a, 16))
        ends.append(int(b or a, 16))
    return starts, ends


def in_table(ch: str, table: tuple[list[int], list[int]]) -> bool:
    """True if the code point of ``ch`` lies in one of the ranges of ``table`` (binary search)."""
    starts, ends = table
    k = bisect_right(starts, ord(ch)) - 1
    return k >= 0 and ord(ch) <= ends[k]

'''
