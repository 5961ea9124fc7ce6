r"""Intrinsic evaluation of word vectors, reproducing gensim's numbers exactly.

**Word similarity** (词语相似度): for word pairs rated by people (WordSim-353,
SimLex-999), compare the model's cosine similarities with the human scores by
Spearman's rank correlation $\rho$ (the Pearson correlation of the ranks, ties
given their average rank).

**Analogies** (词类比, 3CosAdd): for "$a$ is to $b$ as $c$ is to ?", answer the word
whose unit vector is closest to $\hat b - \hat a + \hat c$ (each term normalised,
the sum normalised again), excluding $a, b, c$. Accuracy per section and in total.

gensim's conventions, which change the numbers and so are copied here:

* only the first ``restrict_vocab`` words (the most frequent) may appear, in a
  question or as an answer; questions with any other word are *skipped*;
* ``case_insensitive``: words are compared upper-cased, and when several case variants
  exist the most frequent one's vector is used;
* an analogy answer is taken from the top 5 candidates: the first that is not one of
  the (upper-cased) question words;
* the total accuracy counts every non-skipped question once.

Vectors of a diverged run (NaN or inf) get **no score**: ``evaluate_word_pairs`` returns NaN
for Spearman and Pearson when a pair's cosine is not finite (as gensim does), and
``evaluate_word_analogies`` returns a NaN accuracy when a candidate vector is not finite;
both warn (``RuntimeWarning``).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .checks import check_int
from .vectors import WordVectors


def _check_args(wv, path, restrict_vocab) -> None:
    if not isinstance(wv, WordVectors):
        raise TypeError(f"wv must be a WordVectors (for gensim KeyedVectors: WordVectors(list(kv.index_to_key), "
                        f"kv.vectors)), got {type(wv).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"pass the path of the test file, got {type(path).__name__}")
    check_int("restrict_vocab", restrict_vocab, minimum=1)


def _no_score(what: str) -> float:
    warnings.warn(f"{what}: the vectors contain NaN or inf values (a diverged training run?); returning NaN "
                  "instead of a score", RuntimeWarning, stacklevel=3)
    return float("nan")


def _ok_vocab(wv: WordVectors, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
    keys = wv.index_to_key[:restrict_vocab]
    # reversed: the first (most frequent) case variant wins
    return {(k.upper() if case_insensitive else k): i for i, k in reversed(list(enumerate(keys)))}


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.sqrt((x.astype(np.float64) ** 2).sum(-1, keepdims=True))   # norm in float64, like gensim
    return (x / np.where(n == 0, 1, n)).astype(np.float32)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get the mean of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0                           # mean of ranks s+1..e
    return ranks


def spearman(a, b) -> float:
    """Spearman's $\\rho$ = Pearson correlation of the (tie-averaged) ranks."""
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra**2).sum() * (rb**2).sum()))


def evaluate_word_pairs(wv: WordVectors, pairs, delimiter: str = "\t", restrict_vocab: int = 300000,
                        case_insensitive: bool = True) -> dict:
    """Spearman correlation with human similarity scores (gensim ``evaluate_word_pairs``).

    Parameters
    ----------
    wv : WordVectors
    pairs : path
        Lines ``word1<delimiter>word2<delimiter>score``; ``#`` starts a comment line.
    restrict_vocab, case_insensitive
        As in gensim.

    Returns
    -------
    dict
        ``spearman``, ``pearson``, ``oov_ratio`` (percent of pairs skipped), ``n_pairs`` used;
        ``spearman`` and ``pearson`` are NaN when a used vector is not finite.
    """
    _check_args(wv, pairs, restrict_vocab)
    ok = _ok_vocab(wv, restrict_vocab, case_insensitive)
    unit = _unit(wv.vectors)
    gold, model, oov = [], [], 0
    with open(pairs, encoding="utf8") as f:
        for line in f:
            if not line or line.startswith("#"):
                continue
            parts = line.split(delimiter)
            if len(parts) != 3:
                continue
            a, b, sim = [p.upper() if case_insensitive else p for p in parts]
            try:
                sim = float(sim)
            except ValueError:
                continue
            if a not in ok or b not in ok:
                oov += 1
                continue
            gold.append(sim)
            model.append(float(unit[ok[a]] @ unit[ok[b]]))              # cosine similarity
    if not gold:
        raise ValueError(f"no pair of {pairs} has both words in the first {restrict_vocab} words")
    g, m = np.array(gold), np.array(model)
    if not np.isfinite(m).all():
        nan = _no_score("evaluate_word_pairs")
        return {"spearman": nan, "pearson": nan, "oov_ratio": 100.0 * oov / (len(gold) + oov),
                "n_pairs": len(gold)}
    pearson = float(np.corrcoef(g, m)[0, 1])
    return {"spearman": spearman(g, m), "pearson": pearson,
            "oov_ratio": 100.0 * oov / (len(gold) + oov), "n_pairs": len(gold)}


def evaluate_word_analogies(wv: WordVectors, analogies, restrict_vocab: int = 300000,
                            case_insensitive: bool = True) -> tuple[float, list[dict]]:
    """3CosAdd analogy accuracy (gensim ``evaluate_word_analogies``).

    Returns
    -------
    score : float
        Total accuracy over the questions whose four words are all allowed (0.0 when there is
        none; NaN when a candidate vector is not finite).
    sections : list of dict
        One per section (``section``, ``correct``, ``incorrect`` counts), then the total.
    """
    _check_args(wv, analogies, restrict_vocab)
    if not np.isfinite(wv.vectors[:restrict_vocab]).all():
        return _no_score("evaluate_word_analogies"), []
    ok = _ok_vocab(wv, restrict_vocab, case_insensitive)
    unit = _unit(wv.vectors[:restrict_vocab])                         # (R, D) candidates
    keys = wv.index_to_key
    sections, questions = [], []                                      # questions: (section, a, b, c, expected)
    with open(analogies, encoding="utf8") as f:
        for line in f:
            if line.startswith(": "):
                sections.append({"section": line.lstrip(": ").strip(), "correct": 0, "incorrect": 0})
                continue
            if not sections:
                raise ValueError(f"{analogies}: a question comes before the first ': section' line")
            words = line.split()
            if len(words) != 4:
                continue
            q = [w.upper() if case_insensitive else w for w in words]
            if all(w in ok for w in q):                                 # gensim skips OOV questions
                questions.append((len(sections) - 1, *q))
    for start in range(0, len(questions), 512):                       # 512 questions per matrix product
        chunk = questions[start:start + 512]
        idx = np.array([[ok[a], ok[b], ok[c]] for _, a, b, c, _ in chunk])  # (Q, 3)
        # 3CosAdd: mean of unit vectors, weights -1 (a), +1 (b, c), then normalised
        mean = _unit((unit[idx[:, 1]] + unit[idx[:, 2]] - unit[idx[:, 0]]) / 3.0)  # (Q, D)
        sims = mean @ unit.T                                          # (Q, R) cosines
        top = np.argpartition(-sims, 8, axis=1)[:, :8] if sims.shape[1] > 8 else \
            np.tile(np.arange(sims.shape[1]), (len(chunk), 1))
        for (sec, a, b, c, expected), row, cand, qi in zip(chunk, sims, top, idx):
            cand = sorted(cand, key=lambda i: (-row[i], i))           # best first
            cand = [i for i in cand if i not in qi][:5]               # top 5 without the question words
            predicted = None
            for i in cand:
                predicted = keys[i].upper() if case_insensitive else keys[i]
                if predicted in ok and predicted not in (a, b, c):
                    break
            sections[sec]["correct" if predicted == expected else "incorrect"] += 1
    right = sum(s["correct"] for s in sections)
    total = right + sum(s["incorrect"] for s in sections)
    sections.append({"section": "Total accuracy", "correct": right, "incorrect": total - right})
    return (right / total if total else 0.0), sections


def semantic_syntactic(sections: list[dict]) -> dict:
    """Accuracy on the semantic and the syntactic questions of the Google analogy set.

    ``sections`` is the list returned by :func:`evaluate_word_analogies`; the syntactic sections
    are those named ``gram...`` (plurals, past tenses, comparatives, ...), the others (capitals,
    currencies, family, ...) are semantic. NaN for a part with no question.
    """
    if not isinstance(sections, list) or not all(isinstance(s, dict) and "section" in s for s in sections):
        raise TypeError("sections must be the list of dicts returned by evaluate_word_analogies")
    out = {}
    for part, is_part in (("semantic", lambda n: not n.startswith("gram")), ("syntactic", lambda n: n.startswith("gram"))):
        chosen = [s for s in sections if s["section"] != "Total accuracy" and is_part(s["section"])]
        right = sum(s["correct"] for s in chosen)
        total = right + sum(s["incorrect"] for s in chosen)
        out[part] = right / total if total else float("nan")
    return out


def standard_scores(wv: WordVectors) -> dict:
    """WordSim-353 and SimLex-999 Spearman $\\rho$, and Google analogy accuracy (total, semantic,
    syntactic), with gensim's defaults (``restrict_vocab=300000``, case-insensitive)."""
    from ..data import gensim_test_file
    acc, sections = evaluate_word_analogies(wv, gensim_test_file("questions-words.txt"))
    return {"wordsim353": evaluate_word_pairs(wv, gensim_test_file("wordsim353.tsv"))["spearman"],
            "simlex999": evaluate_word_pairs(wv, gensim_test_file("simlex999.txt"))["spearman"],
            "analogy": acc, **semantic_syntactic(sections)}
