r"""A real sequence-to-sequence task: Chinese characters -> numbered pinyin (拼音), HSK sentences.

Every Chinese character (汉字) is read as one syllable, and most characters have one reading, so a
per-character dictionary is a strong baseline. What it cannot do is read **polyphonic characters**
(多音字) from context: 了 is *le5* as a particle but *liao3* in 了解 (to understand), 得 is *de5* in
跑得快 but *de2* in 得到 (to obtain), 觉 is *jue2* in 觉得 but *jiao4* in 睡觉 (to sleep). An
encoder-decoder reads the whole sentence before it writes a syllable, so it can.

Data: the 4,354 sentences of ``hsk-sentences-audio`` (``course_lib.data``), whose JSON holds a
``pinyin_numbered`` field (tone numbers 1-4, 5 = neutral tone) with one syllable per character.
We keep the Chinese characters only (punctuation dropped), so source and target have equal length:

    他的手指流血了  ->  ta1 de5 shou3 zhi3 liu2 xue4 le5

Token conventions follow ``Seq2SeqConfig``: ``<pad>`` = 0, ``<s>`` = 1 (decoder start), ``</s>`` = 2,
``<unk>`` = 3; characters and syllables share one vocabulary (and one embedding matrix).
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import data_path

__all__ = ["SPECIALS", "is_hanzi", "load_pinyin_pairs", "load_cedict_pairs", "split_pairs", "Vocab",
           "encode_pairs", "PairBatches", "pair_batches", "MostFrequentReading", "translate", "exact_match",
           "token_accuracy", "accuracy_by_kind", "cross_attention", "find_cjk_font"]

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
Pair = tuple[list[str], list[str]]          # (characters, syllables), equal length


def is_hanzi(ch: str) -> bool:
    """CJK Unified Ideographs (U+4E00-U+9FFF), the block every HSK character lies in."""
    return "\u4e00" <= ch <= "\u9fff"


def load_pinyin_pairs() -> list[Pair]:
    """The HSK sentences as (characters, numbered syllables) pairs, in file order.

    Sentences whose character count differs from their syllable count are dropped (none are, in
    version 1.0.0 of the data package).
    """
    items = json.loads(data_path("hsk_sentences").read_text(encoding="utf-8"))
    pairs = []
    for item in items:
        chars = [c for c in item["chinese"] if is_hanzi(c)]
        syllables = item["pinyin_numbered"].split()
        if chars and len(chars) == len(syllables):
            pairs.append((chars, syllables))
    return pairs


def load_cedict_pairs(charset: set[str], min_length: int = 2) -> list[Pair]:
    """CC-CEDICT words written only with characters of ``charset``, as (characters, syllables) pairs.

    Extra training data for the encoder-decoder: a dictionary gives the reading of a character
    *inside a word* (了解 liao3 jie3, 得到 de2 dao4), which is exactly the context a per-character
    lookup cannot use. Proper nouns (capitalised pinyin) are left out (surnames and place names
    have their own readings); ``u:`` is written ``v`` as in the HSK data; entries whose syllable
    count differs from their length (letters, digits, erhua written apart) are dropped.
    """
    from ..data import load_cedict
    syllable = re.compile(r"^[a-z]+[1-5]$")
    pairs = []
    df = load_cedict()
    for word, reading in zip(df["simplified"], df["pinyin"]):
        if len(word) < min_length or not all(c in charset for c in word):
            continue
        syllables = reading.replace("u:", "v").split()
        if len(syllables) == len(word) and all(syllable.match(s) for s in syllables):
            pairs.append((list(word), syllables))
    return pairs


def split_pairs(pairs: list[Pair], valid: float = 0.1, test: float = 0.1,
                seed: int = 0) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Shuffle with ``seed`` and cut into (train, valid, test)."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_test, n_valid = round(test * len(pairs)), round(valid * len(pairs))
    pick = lambda idx: [pairs[i] for i in idx]                                   # noqa: E731
    return pick(order[n_test + n_valid:]), pick(order[n_test:n_test + n_valid]), pick(order[:n_test])


@dataclass
class Vocab:
    """Token <-> id, specials first. ``Vocab.build(pairs)`` takes every character and syllable of ``pairs``."""
    itos: list[str]

    def __post_init__(self):
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, pairs: list[Pair]) -> "Vocab":
        chars = sorted({c for src, _ in pairs for c in src})
        syllables = sorted({s for _, tgt in pairs for s in tgt})
        return cls(SPECIALS + chars + syllables)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        unk = self.stoi["<unk>"]
        return [self.stoi.get(t, unk) for t in tokens]

    def decode(self, ids: list[int]) -> list[str]:
        """Ids after the decoder start, up to (not including) ``</s>``; padding skipped."""
        out = []
        for i in ids:
            if i == 2:                                                           # </s>
                break
            if i > 2:
                out.append(self.itos[i])
        return out


def encode_pairs(pairs: list[Pair], vocab: Vocab) -> list[tuple[list[int], list[int]]]:
    """Source ids ``chars + </s>`` and target ids ``syllables + </s>`` of every pair."""
    return [(vocab.encode(src) + [2], vocab.encode(tgt) + [2]) for src, tgt in pairs]


def _collate(items: list[tuple[list[int], list[int]]], device=None) -> tuple[torch.Tensor, ...]:
    """Pad a list of (src ids, tgt ids) into the 4 tensors of ``training.seq2seq_loss``."""
    S, T = max(len(s) for s, _ in items), max(len(t) for _, t in items)
    src = torch.zeros(len(items), S, dtype=torch.long)                           # <pad> = 0
    labels = torch.zeros(len(items), T, dtype=torch.long)
    for b, (s, t) in enumerate(items):
        src[b, :len(s)], labels[b, :len(t)] = torch.tensor(s), torch.tensor(t)
    dec_in = torch.cat([torch.ones(len(items), 1, dtype=torch.long), labels[:, :-1]], dim=1)  # <s> y_1 .. y_{T-1}
    dec_in[dec_in == 2] = 0            # the decoder never reads </s>; after it only padding (ignored)
    tensors = (src, src != 0, dec_in, labels)
    return tuple(t.to(device) for t in tensors)


class PairBatches:
    """Training batches in shuffled epochs (seeded per epoch): ``batches(step) -> (src, mask, dec_in, labels)``."""

    def __init__(self, encoded: list[tuple[list[int], list[int]]], batch_size: int, seed: int = 0, device=None):
        if batch_size > len(encoded):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(encoded)} training pairs")
        self.encoded, self.batch_size, self.seed, self.device = encoded, batch_size, seed, device
        self.per_epoch = len(encoded) // batch_size

    def __call__(self, step: int) -> tuple[torch.Tensor, ...]:
        epoch, k = divmod(step, self.per_epoch)
        order = torch.randperm(len(self.encoded), generator=torch.Generator().manual_seed(self.seed + epoch))
        idx = order[k * self.batch_size:(k + 1) * self.batch_size].tolist()
        return _collate([self.encoded[i] for i in idx], self.device)


def pair_batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, device=None) -> list[tuple]:
    """All pairs in order, as padded batches (for ``training.evaluate``)."""
    return [_collate(encoded[i:i + batch_size], device) for i in range(0, len(encoded), batch_size)]


def _reading_counts(pairs: list[Pair]) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for src, tgt in pairs:
        for c, s in zip(src, tgt):
            counts[c][s] += 1
    return dict(counts)


class MostFrequentReading:
    """The baseline: read every character with its most frequent syllable in the training pairs.

    Characters absent from ``pairs`` take their most frequent reading in ``fallback`` pairs (e.g.
    dictionary words), if given; a character absent from both is read ``<unk>`` (always wrong).
    Ties go to the reading seen first. ``counts[c]`` is the Counter of readings of c in ``pairs``.
    """

    def __init__(self, pairs: list[Pair], fallback: list[Pair] | None = None):
        self.counts = _reading_counts(pairs)
        reading = {c: n.most_common(1)[0][0] for c, n in _reading_counts(fallback or []).items()}
        reading.update({c: n.most_common(1)[0][0] for c, n in self.counts.items()})
        self.reading = reading

    def predict(self, chars: list[str]) -> list[str]:
        return [self.reading.get(c, "<unk>") for c in chars]


@torch.no_grad()
def translate(model, sources: list[list[str]], vocab: Vocab, batch_size: int = 256) -> list[list[str]]:
    """Greedy decoding of many character sequences -> syllable lists (model in eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(sources), batch_size):
        items = [(vocab.encode(s) + [2], [2]) for s in sources[i:i + batch_size]]
        src, mask, _, _ = _collate(items, device)
        gen = model.generate(src, attention_mask=mask, max_new_tokens=src.shape[1] + 2)   # (B, 1 + L)
        out += [vocab.decode(row[1:].tolist()) for row in gen]
    return out


def exact_match(preds: list[list[str]], refs: list[list[str]]) -> float:
    """Fraction of sentences whose whole syllable sequence is right."""
    return sum(p == r for p, r in zip(preds, refs)) / len(refs)


def token_accuracy(preds: list[list[str]], refs: list[list[str]]) -> float:
    """Fraction of reference syllables predicted right at their position (missing = wrong)."""
    right = sum(a == b for p, r in zip(preds, refs) for a, b in zip(p, r))
    return right / sum(len(r) for r in refs)


def accuracy_by_kind(preds: list[list[str]], pairs: list[Pair], counts: dict[str, Counter]) -> dict[str, tuple]:
    """Token accuracy split by what the training pairs say about each character.

    ``counts`` maps a character to the Counter of its readings in the training pairs
    (``MostFrequentReading(train).counts``). Kinds: ``"one reading"``, ``"several readings"``
    (polyphonic in the training data) and ``"unseen"``. Returns kind -> (number of characters, accuracy).
    """
    right: Counter = Counter()
    total: Counter = Counter()
    for pred, (chars, ref) in zip(preds, pairs):
        for i, (c, r) in enumerate(zip(chars, ref)):
            kind = "unseen" if c not in counts else ("one reading" if len(counts[c]) == 1 else "several readings")
            total[kind] += 1
            right[kind] += i < len(pred) and pred[i] == r
    return {k: (total[k], right[k] / total[k]) for k in ("one reading", "several readings", "unseen") if total[k]}


@torch.no_grad()
def cross_attention(model, src_ids: torch.Tensor, decoder_input_ids: torch.Tensor) -> list[torch.Tensor]:
    """Cross-attention weights of every decoder layer, each (B, H, T_tgt, T_src), via forward hooks.

    ``src_ids`` (B, S) and ``decoder_input_ids`` (B, T) (teacher forcing, e.g. ``<s>`` + prediction).
    """
    maps, hooks = [], []
    for layer in model.transformer.decoder.layers:
        hooks.append(layer.multihead_attn.register_forward_hook(lambda mod, args, out: maps.append(out[1])))
    try:
        model.eval()
        model(src_ids, decoder_input_ids, attention_mask=src_ids != 0)
    finally:
        for h in hooks:
            h.remove()
    return maps


_CJK_FONT_FILES = ("wqy", "notosanscjk", "notoserifcjk", "sourcehan", "simhei", "simsun", "msyh", "pingfang",
                   "droidsansfallback", "uming", "ukai", "arplumingcn")


def find_cjk_font():
    """A ``matplotlib.font_manager.FontProperties`` for an installed font with Chinese glyphs, or None.

    Matplotlib's default font (DejaVu Sans) has no Chinese characters and warns for every missing
    glyph; pass the result as ``fontproperties=`` to tick labels, and fall back to other labels if
    None. The font is addressed by its file, so no family lookup (and no lookup warning) happens.
    """
    from matplotlib import font_manager
    for path in sorted(font_manager.findSystemFonts()):
        name = Path(path).name.lower().replace("-", "").replace("_", "")
        if any(key in name for key in _CJK_FONT_FILES):
            return font_manager.FontProperties(fname=path)
    return None
