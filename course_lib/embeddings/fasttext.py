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
the error is added *in full* to every row that formed the mean. (gensim 4.4's skip-gram
training divides the sum of the $n+1$ rows by $n$, the number of n-grams, and only its
final ``wv.vectors`` by $n+1$, see ``fasttext_fast_sentence_sg_neg`` in
``gensim/models/fasttext_inner.pyx``; we use the true mean throughout, like Facebook's fastText.)

**Initialisation.** Word and n-gram rows start uniform in $(-1/D, 1/D)$, as in fastText and
gensim 4, twice word2vec's $(-0.5/D, 0.5/D)$; output vectors start at 0. The scale matters
more than for Word2Vec: a centre vector is the mean of $n+1$ independent rows, about
$\sqrt{n+1}$ times shorter than one row, and since $u = 0$ at first, the output vectors grow
in proportion to that mean and the input rows in proportion to the output vectors. Starting
twice smaller slows this start, which a small corpus, still far from converged after a few
epochs, does not make up: on the Rotten Tomatoes snippets (222k tokens, 5 epochs) word2vec's
range gave 18.3% on the analogies against gensim's 23.2%, fastText's range gives 23.2%
(mean of 3 seeds, ``benchmarks/README.md``).

Batching needs more care than for Word2Vec: a popular n-gram row (``ing>``, ``<th``) is
part of many words of one batch and receives the sum of all their updates, computed from
the same old values. Batches of 2048 centre words diverged on WikiText-2 where 512-1024
trained well; the trainer stops with a clear error if the loss stops being finite.
"""
from __future__ import annotations

import numpy as np
import torch

from .checks import check_corpus, check_int, check_loop_args
from .config import FastTextConfig
from .pairs import skipgram_pairs
from .vectors import WordVectors
from .vocab import Vocab
from .word2vec_numpy import check_config, check_vocab, init_vectors
from .word2vec_torch import (draw_negatives, negative_sampling_update, run_pair_epochs, run_window_epochs,
                             window_negative_sampling_update)


def _check_word_range(word, min_n, max_n) -> None:
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    check_int("min_n", min_n, minimum=1)
    check_int("max_n", max_n)
    if max_n < min_n:
        raise ValueError(f"need 1 <= min_n <= max_n, got min_n={min_n}, max_n={max_n}")


def compute_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """All character n-grams of ``<word>`` with ``min_n <= n <= max_n`` (by length, then position)."""
    _check_word_range(word, min_n, max_n)
    ext = f"<{word}>"
    return [ext[i:i + n] for n in range(min_n, min(len(ext), max_n) + 1)
            for i in range(len(ext) - n + 1)]


def compute_ngrams_bytes(word: str, min_n: int, max_n: int) -> list[bytes]:
    """The n-grams fastText hashes: UTF-8 bytes of ``<word>``, cut at character starts.

    Ordered by start position, then length; single ``<`` or ``>`` are left out.
    """
    _check_word_range(word, min_n, max_n)
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
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"ft_hash takes bytes, got {type(data).__name__}; encode text with .encode('utf-8')")
    h = 2166136261
    for byte in data:
        signed = byte - 256 if byte >= 128 else byte           # read as int8 (signed char)
        h = ((h ^ (signed & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF  # xor uint32(int8), times FNV prime
    return h


def ngram_buckets(word: str, min_n: int, max_n: int, bucket: int) -> list[int]:
    """Bucket row of every n-gram of ``word`` (gensim ``ft_ngram_hashes``)."""
    check_int("bucket", bucket, minimum=1)
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
    if not isinstance(cfg, FastTextConfig):
        raise TypeError(f"cfg must be a FastTextConfig, got {type(cfg).__name__}")
    if isinstance(words, str) or not words or not all(isinstance(w, str) for w in words):
        raise TypeError("words must be a non-empty list of str (e.g. vocab.index_to_key)")
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
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        if word in self.key_to_index:
            return self.vectors[self.key_to_index[word]]
        rows = ngram_buckets(word, self.cfg.min_n, self.cfg.max_n, self.cfg.bucket)
        if not rows:
            raise KeyError(f"word {word!r} has no n-grams of length {self.cfg.min_n}..{self.cfg.max_n}")
        return self.ngram_vectors[rows].mean(0)


def subword_mean(emb: torch.Tensor, table: torch.Tensor, lengths: torch.Tensor, words: torch.Tensor):
    """Input vectors of ``words`` (B,): the mean of each word's own row and n-gram rows.

    Each distinct word is composed once, from a compact list of its rows (no padding).
    Returns ``h`` (B, D) and what :func:`add_to_subwords` needs to send a gradient back.
    """
    uniq, inv = torch.unique(words, return_inverse=True)        # compose each distinct word once
    n = lengths[uniq]                                            # (U,) rows per word
    valid = torch.arange(table.shape[1], device=table.device)[None, :] < n[:, None]
    rows = table[uniq][valid]                                    # (R,) all their rows, word after word
    starts = torch.cumsum(n, 0) - n                              # (U,) where each word's rows begin
    h_u = torch.nn.functional.embedding_bag(rows, emb, starts, mode="mean")  # (U, D): mean of rows
    owner = torch.repeat_interleave(torch.arange(len(uniq), device=n.device), n)  # (R,) word of each row
    return h_u[inv], (rows, owner, inv, len(uniq))


def add_to_subwords(emb: torch.Tensor, grad_h: torch.Tensor, back) -> None:
    """Add the error ``grad_h`` (B, D) *in full* to every row that formed each mean (fastText's rule)."""
    rows, owner, inv, n_uniq = back
    grad_u = torch.zeros((n_uniq, grad_h.shape[1]), device=grad_h.device, dtype=grad_h.dtype)
    grad_u.index_add_(0, inv, grad_h)                            # (U, D): summed per distinct word
    emb.index_add_(0, rows, grad_u.index_select(0, owner))       # (R, D): each row gets its word's error


@torch.no_grad()
def fasttext_step(emb, w_out, table, lengths, centers, contexts, negatives, lr) -> float:
    """One skip-gram step on pairs where a centre vector is the mean of its subword rows."""
    h, back = subword_mean(emb, table, lengths, centers)         # (B, D)
    grad_h, loss = negative_sampling_update(w_out, h, contexts, negatives, lr)  # (B, D)
    add_to_subwords(emb, grad_h, back)
    return loss


@torch.no_grad()
def fasttext_step_windows(emb, w_out, table, lengths, tokens, mask, negatives, lr, negative,
                          need_loss: bool = True) -> float:
    """FastText on chunks of centre words (the windows of :func:`sgns_step_windows`)."""
    G, L, T = mask.shape
    W = (T - L) // 2
    h, back = subword_mean(emb, table, lengths, tokens[:, W:W + L].reshape(-1))    # (G L, D)
    grad_h, loss = window_negative_sampling_update(w_out, h.view(G, L, -1), tokens, mask, negatives,
                                                   lr, negative, need_loss)        # (G, L, D)
    add_to_subwords(emb, grad_h.reshape(G * L, -1), back)
    return loss


def train_fasttext(sentences: list[list[str]], cfg: FastTextConfig, batch_size: int = 4096,
                   device=None, vocab: Vocab | None = None, log_every: int = 0, loss_every: int = 1,
                   chunk_len: int = 0, shared_negatives: int = 64) -> FastTextVectors:
    """Train FastText skip-gram (``cfg.sg`` must be 1) with negative sampling in PyTorch.

    Parameters are those of :func:`course_lib.embeddings.word2vec_torch.train_word2vec`
    (``chunk_len = 0``: shuffled pairs with their own negatives; ``> 0``: chunks of centre
    words with shared negatives, much faster); ``cfg`` adds ``min_n, max_n, bucket``.

    Returns
    -------
    FastTextVectors
        ``vectors`` = mean of own row and n-gram rows (what gensim's ``wv.vectors`` holds),
        ``ngram_vectors`` (bucket, D) for out-of-vocabulary words.
    """
    check_config(cfg, FastTextConfig)
    if not cfg.sg:
        raise ValueError("only skip-gram FastText (sg=1) is implemented")
    check_loop_args(batch_size=batch_size, log_every=log_every, loss_every=loss_every, chunk_len=chunk_len,
                    shared_negatives=shared_negatives)
    device = torch.device(device or "cpu")
    vocab = check_vocab(vocab, sentences, cfg.min_count)
    V = len(vocab)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    table_np, lengths_np = subword_table(vocab.index_to_key, cfg)
    # fastText's and gensim's U(-1/D, 1/D), twice word2vec's range: a mean of n + 1 random rows is
    # about sqrt(n + 1) times shorter than one row, and training starts from it (see the module notes)
    w_init, _ = init_vectors(V + cfg.bucket, cfg.vector_size, rng, bound=1.0 / cfg.vector_size)
    emb = torch.from_numpy(w_init).to(device)                    # rows 0..V-1 words, then buckets
    w_out = torch.zeros((V, cfg.vector_size), device=device)
    table, lengths = torch.from_numpy(table_np).to(device), torch.from_numpy(lengths_np).to(device)
    ids, sent = vocab.encode(sentences)
    check_corpus(ids, sent)
    keep = vocab.keep_probs(cfg.sample)
    cum = torch.from_numpy(vocab.cum_table(cfg.ns_exponent)).to(device)
    if chunk_len:
        def window_step(tokens, mask, neg, lr, need_loss):
            return fasttext_step_windows(emb, w_out, table, lengths, tokens, mask, neg, lr, cfg.negative,
                                         need_loss)
        losses, seconds = run_window_epochs(window_step, ids, sent, keep, cum, cfg, rng, gen, batch_size,
                                            chunk_len, shared_negatives, log_every, loss_every, (emb, w_out))
    else:
        def pair_step(cb, ob, lr, need_loss):
            neg = draw_negatives(cum, (len(cb), cfg.negative), gen)
            return fasttext_step(emb, w_out, table, lengths, cb, ob, neg, lr)
        losses, seconds = run_pair_epochs(pair_step, skipgram_pairs, ids, sent, keep, cfg, rng, device,
                                          batch_size, 1, log_every, loss_every, (emb, w_out))
    return _fasttext_vectors(emb, table_np, lengths_np, vocab, cfg, losses, seconds, len(ids))


def _fasttext_vectors(emb, table_np, lengths_np, vocab, cfg, losses, seconds, n_tokens) -> FastTextVectors:
    emb_np = emb.cpu().numpy()
    mask = np.arange(table_np.shape[1])[None, :] < lengths_np[:, None]
    vectors = (emb_np[table_np] * mask[:, :, None]).sum(1) / lengths_np[:, None]  # (V, L, D) -> (V, D)
    return FastTextVectors(vocab.index_to_key, vectors, emb_np[len(vocab):], cfg, counts=vocab.counts,
                           losses=losses, seconds=seconds, words=n_tokens * cfg.epochs)
