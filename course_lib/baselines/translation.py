r"""Word-by-word Chinese -> English translation with CC-CEDICT, scored with BLEU and chrF.

The oldest idea in machine translation: cut the sentence into words (``jieba``, a dictionary +
HMM segmenter), look every word up in a bilingual dictionary (CC-CEDICT), and print the first
gloss of each. What it cannot do is what makes translation hard: reorder ("我明天去北京" is
"I tomorrow go Beijing"), choose a sense from context (打 is "beat", but 打电话 is "make a phone
call"), add what English needs and Chinese leaves out (articles, plural, tense), and drop what
Chinese needs and English does not (了, measure words like 个).

**Scores** (``sacrebleu``; its downloadable test sets are not used). BLEU (Papineni et al., 2002):
the geometric mean of clipped 1- to 4-gram precisions times a brevity penalty, on a 0-100 scale;
chrF (Popović, 2015): the F-score (recall weighted :math:`\beta = 2`) of character 1- to 6-grams,
kinder to a right word in the wrong form.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["first_gloss", "build_dictionary", "DictionaryTranslator", "corpus_scores", "sentence_chrf"]

_SKIP = ("used in", "variant of", "old variant", "unofficial variant", "cl:", "surname", "see ", "abbr. for",
         "also pr.", "also written", "erhua variant", "japanese variant", "archaic variant")
_PUNCT = {"。": ".", "、": ",", "“": '"', "”": '"', "‘": "'", "’": "'", "《": '"', "》": '"', "…": "...", "—": "-"}


def first_gloss(senses: list[str]) -> str:
    """The first usable English gloss of a CC-CEDICT entry, e.g. ``["to eat; to consume", ...]`` -> ``"eat"``.

    Notes in parentheses, cross-references ("variant of ...", "CL:..."), and a leading "to " are
    removed; a sense that is only a note (a grammatical particle such as 了) yields ``""``.
    """
    for sense in senses:
        text = re.sub(r"\([^)]*\)", "", sense).strip()
        if not text or text.lower().startswith(_SKIP):
            continue
        text = text.split(";")[0].split(",")[0].strip()
        text = re.sub(r"^to ", "", text)
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            return text
    return ""


def build_dictionary(cedict) -> dict[str, str]:
    """``{simplified: gloss}`` from ``load_cedict()``: per word, the entry with the most senses among those
    with lower-case pinyin (common words, not names), and its :func:`first_gloss` (``""`` for particles)."""
    best: dict[str, tuple[int, bool, list[str]]] = {}
    for simp, pinyin, senses in zip(cedict["simplified"], cedict["pinyin"], cedict["english"]):
        common = pinyin[:1].islower()
        rank = (common, len(senses))
        if simp not in best or rank > best[simp][:2]:
            best[simp] = (common, len(senses), senses)
    if not best:
        raise ValueError("the dictionary is empty: pass course_lib.data.load_cedict()")
    return {w: first_gloss(s) for w, (_, _, s) in best.items()}


class DictionaryTranslator:
    """Segment with jieba, translate each word by its dictionary gloss, join with spaces.

    A word missing from the dictionary is split into the longest dictionary words from the left
    (often single characters); a character with no entry (a digit, a Latin letter) is copied;
    Chinese punctuation becomes ASCII. Particles whose gloss is ``""`` vanish.
    """

    def __init__(self, dictionary: dict[str, str], max_word: int = 6):
        if not isinstance(dictionary, dict) or not dictionary:
            raise ValueError("dictionary must be a non-empty {chinese: english} dict (see build_dictionary)")
        self.dictionary, self.max_word = dictionary, max_word
        try:
            import jieba
        except ImportError as err:                                        # pragma: no cover
            raise ImportError("DictionaryTranslator needs jieba: pip install jieba==0.42.1") from err
        import logging
        jieba.setLogLevel(logging.WARNING)
        self._cut = jieba.lcut

    def segment(self, sentence: str) -> list[str]:
        """jieba's segmentation (precise mode, HMM for unknown words)."""
        if not isinstance(sentence, str):
            raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
        return [w for w in self._cut(sentence) if w.strip()]

    def lookup(self, word: str) -> list[str]:
        """English for one segmented word: its gloss, else glosses of its longest dictionary pieces."""
        word = _PUNCT.get(word, unicodedata.normalize("NFKC", word))
        if word in self.dictionary:
            return [self.dictionary[word]] if self.dictionary[word] else []
        out, i = [], 0
        while i < len(word):
            for n in range(min(self.max_word, len(word) - i), 0, -1):       # longest match first
                piece = word[i:i + n]
                if piece in self.dictionary or n == 1:
                    gloss = self.dictionary.get(piece, piece)                # unknown single character: copy it
                    if gloss:
                        out.append(gloss)
                    i += n
                    break
        return out

    def translate(self, sentence: str) -> str:
        """Word-by-word English for a Chinese sentence (``""`` for an empty one)."""
        words = [g for w in self.segment(sentence) for g in self.lookup(w)]
        text = " ".join(words)
        return re.sub(r" ([.,!?;:])", r"\1", text)                          # no space before punctuation

    def translate_all(self, sentences) -> list[str]:
        if isinstance(sentences, str):
            raise TypeError("translate_all takes a list of sentences; use translate() for one")
        return [self.translate(s) for s in sentences]


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF (``sacrebleu``, default settings, one reference per sentence)."""
    try:
        import sacrebleu
    except ImportError as err:                                            # pragma: no cover
        raise ImportError("corpus_scores needs sacrebleu: pip install sacrebleu==2.6.0") from err
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses and references must be lists of str, one per sentence")
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need one reference per hypothesis and at least one pair, got {len(hypotheses)} "
                         f"hypotheses and {len(references)} references")
    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)])
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {"bleu": bleu.score, "chrf": chrf.score, "bleu_precisions": list(bleu.precisions), "bp": bleu.bp}


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """chrF of one sentence pair (0-100)."""
    import sacrebleu
    return sacrebleu.sentence_chrf(hypothesis, [reference]).score
