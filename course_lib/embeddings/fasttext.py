r"""FastText (Bojanowski et al., 2017): a word is the sum of its character n-grams.

The word *where* with ``min_n=3, max_n=6`` is wrapped in boundary marks, ``<where>``,
and split into all n-grams of 3 to 6 characters: ``<wh, whe, her, ere, re>, <whe, ...``.
There are far too many distinct n-grams to give each a row, so each is **hashed**
(哈希) into one of ``bucket`` rows of a shared matrix: collisions are accepted.

The hash is fastText's 32-bit FNV-1a on the UTF-8 bytes, with one quirk copied by
gensim: each byte is first read as a *signed* char, so bytes >= 0x80 (non-ASCII) are
sign-extended to 32 bits before the XOR:

$$ h_0 = 2166136261,\qquad h_{k+1} = \big(h_k \oplus \text{uint32}(\text{int8}(\text{byte}_k))\big)\cdot 16777619 \bmod 2^{32}. $$

The input vector of an in-vocabulary word is the mean of its own row and its n-gram
rows; an **out-of-vocabulary** (未登录词) word gets the mean of its n-gram rows only —
the reason FastText can embed words it never saw. Training is skip-gram with
negative sampling in which the centre vector is this mean; as in fastText and gensim,
the error is added *in full* to every row that formed the mean.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .config import FastTextConfig
from .pairs import skipgram_pairs
from .vectors import WordVectors
from .vocab import Vocab, subsample
from .word2vec_numpy import init_vectors, linear_lr
from .word2vec_torch import draw_negatives, negative_sampling_update


def compute_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """All character n-grams of ``<word>`` with ``min_n <= n <= max_n`` (by length, then position)."""
    ext = f"<{word}>"
    return [ext[i:i + n] for n in range(min_n, min(len(ext), max_n) + 1)
            for i in range(len(ext) - n + 1)]


def compute_ngrams_bytes(word: str, min_n: int, max_n: int) -> list[bytes]:
    """The n-grams fastText hashes: UTF-8 bytes of ``<word>``, cut at character starts.

    Ordered by start position, then length; single ``<`` or ``>`` are left out.
    """
    data = f"<{word}>".encode("utf-8")
    starts = [i for i, byte in enumerate(data) if byte & 0xC0 != 0x80]  # 10xxxxxx = continuation byte
    bounds = starts + [len(data)]
    out = []
    for a in range(len(starts)):
        for n in range(1, max_n + 1):
            if a + n >= len(bounds):
                break
            if n >= min_n and not (n == 1 and (a == 0 or a + 1 == len(starts))):
                out.append(data[bounds[a]:bounds[a + n]])
    return out


def ft_hash(data: bytes) -> int:
    """fastText's FNV-1a variant (gensim ``ft_hash_bytes``) of a byte string."""
    h = 2166136261
    for byte in data:
        signed = byte - 256 if byte >= 128 else byte           # read as int8 (signed char)
        h = ((h ^ (signed & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF  # xor uint32(int8), times FNV prime
    return h


def ngram_buckets(word: str, min_n: int, max_n: int, bucket: int) -> list[int]:
    """Bucket row of every n-gram of ``word`` (gensim ``ft_ngram_hashes``)."""
    if bucket < 1:
        raise ValueError(f"bucket must be >= 1, got {bucket}")
    return [ft_hash(g) % bucket for g in compute_ngrams_bytes(word, min_n, max_n)]


def subword_table(words: list[str], cfg: FastTextConfig) -> tuple[np.ndarray, np.ndarray]:
    """Padded matrix of the rows that make up each word: its own row, then its n-gram rows.

    Word ``i`` is row ``i``; n-gram buckets are offset by ``len(words)`` so that one
    matrix of ``len(words) + bucket`` rows holds both.

    Returns
    -------
    table : ndarray of int64, shape (V, 1 + max n-grams), padded with 0
    lengths : ndarray of int64, shape (V,)
        Number of valid entries per row.
    """
    lists = [[i] + [len(words) + h for h in ngram_buckets(w, cfg.min_n, cfg.max_n, cfg.bucket)]
             for i, w in enumerate(words)]
    lengths = np.array([len(x) for x in lists])
    table = np.zeros((len(words), lengths.max()), dtype=np.int64)
    for i, x in enumerate(lists):
        table[i, :len(x)] = x
    return table, lengths


class FastTextVectors(WordVectors):
    """Word vectors plus the n-gram matrix, so that unseen words get a vector."""

    def __init__(self, index_to_key, vectors, ngram_vectors: np.ndarray, cfg: FastTextConfig, **kw):
        super().__init__(index_to_key, vectors, **kw)
        self.ngram_vectors, self.cfg = ngram_vectors, cfg

    def get_vector(self, word: str) -> np.ndarray:
        """Vector of any word: the trained one if known, else the mean of its n-gram rows."""
        if word in self.key_to_index:
            return self.vectors[self.key_to_index[word]]
        rows = ngram_buckets(word, self.cfg.min_n, self.cfg.max_n, self.cfg.bucket)
        if not rows:
            raise KeyError(f"word {word!r} has no n-grams of length {self.cfg.min_n}..{self.cfg.max_n}")
        return self.ngram_vectors[rows].mean(0)


@torch.no_grad()
def fasttext_step(emb, w_out, table, lengths, centers, contexts, negatives, lr) -> float:
    """One skip-gram step where a centre vector is the mean of its subword rows."""
    uniq, inv = torch.unique(centers, return_inverse=True)      # compose each distinct centre once
    rows, n = table[uniq], lengths[uniq]                         # (U, L), (U,)
    mask = (torch.arange(rows.shape[1], device=rows.device)[None, :] < n[:, None]).to(emb.dtype)
    h_u = (emb[rows] * mask[:, :, None]).sum(1) / n[:, None]     # (U, L, D) -> (U, D): mean of rows
    h = h_u[inv]                                                 # (B, D)
    grad_h, loss = negative_sampling_update(w_out, h, contexts, negatives, lr)  # (B, D)
    grad_u = torch.zeros_like(h_u).index_add_(0, inv.int(), grad_h)    # (U, D): summed per distinct centre
    L = rows.shape[1]
    emb.index_add_(0, rows.reshape(-1).int(), (grad_u[:, None, :] * mask[:, :, None]).reshape(-1, h.shape[1]))
    return float(loss) if L else 0.0


def train_fasttext(sentences: list[list[str]], cfg: FastTextConfig, batch_size: int = 4096,
                   device=None, vocab: Vocab | None = None, log_every: int = 0) -> FastTextVectors:
    """Train FastText skip-gram (``cfg.sg`` must be 1) with negative sampling in PyTorch.

    Parameters are those of :func:`course_lib.embeddings.word2vec_torch.train_word2vec`;
    ``cfg`` adds ``min_n, max_n, bucket``.

    Returns
    -------
    FastTextVectors
        ``vectors`` = mean of own row and n-gram rows (what gensim's ``wv.vectors`` holds),
        ``ngram_vectors`` (bucket, D) for out-of-vocabulary words.
    """
    if not cfg.sg:
        raise ValueError("only skip-gram FastText (sg=1) is implemented")
    device = torch.device(device or "cpu")
    vocab = vocab or Vocab.build(sentences, cfg.min_count)
    V = len(vocab)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    table_np, lengths_np = subword_table(vocab.index_to_key, cfg)
    w_init, _ = init_vectors(V + cfg.bucket, cfg.vector_size, rng)
    emb = torch.from_numpy(w_init).to(device)                    # rows 0..V-1 words, then buckets
    w_out = torch.zeros((V, cfg.vector_size), device=device)
    table, lengths = torch.from_numpy(table_np).to(device), torch.from_numpy(lengths_np).to(device)
    ids, sent = vocab.encode(sentences)
    keep = vocab.keep_probs(cfg.sample)
    cum = torch.from_numpy(vocab.cum_table(cfg.ns_exponent)).to(device)
    losses, step, start = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        e_ids, e_sent = subsample(ids, sent, keep, rng)
        c, o = skipgram_pairs(e_ids, e_sent, cfg.window, rng)
        perm = rng.permutation(len(c))
        c, o = torch.from_numpy(c[perm]).to(device), torch.from_numpy(o[perm]).to(device)
        n_batches = max(1, -(-len(c) // batch_size))
        for b in range(n_batches):
            cb, ob = c[b * batch_size:(b + 1) * batch_size], o[b * batch_size:(b + 1) * batch_size]
            neg = draw_negatives(cum, (len(cb), cfg.negative), gen)
            lr = linear_lr(cfg, (epoch + b / n_batches) / cfg.epochs)
            losses.append(fasttext_step(emb, w_out, table, lengths, cb, ob, neg, lr) / len(cb))
            step += 1
            if log_every and step % log_every == 0:
                print(f"epoch {epoch}  step {step:6d}  loss {np.mean(losses[-log_every:]):.2f}")
    seconds = time.perf_counter() - start
    emb_np = emb.cpu().numpy()
    mask = np.arange(table_np.shape[1])[None, :] < lengths_np[:, None]
    vectors = (emb_np[table_np] * mask[:, :, None]).sum(1) / lengths_np[:, None]  # (V, L, D) -> (V, D)
    return FastTextVectors(vocab.index_to_key, vectors, emb_np[V:], cfg, counts=vocab.counts,
                           losses=losses, seconds=seconds, words=len(ids) * cfg.epochs)
