r"""Overfitting on a small training set: learning curves and the standard remedies, on TREC-6.

A model **overfits** when it fits its training set better than the data it has not seen: the
*generalisation gap* :math:`\mathrm{acc}_\text{train} - \mathrm{acc}_\text{valid}` grows while the
validation loss stops falling and rises. The model here is small enough to train in seconds on a
CPU and large enough to memorise a few hundred questions:

.. math::  h = \tfrac{1}{|x|}\sum_{t} E[x_t], \qquad
           \mathrm{logits} = W_2\,\mathrm{ReLU}(W_1\,\mathrm{drop}(h) + b_1) + b_2

with the embedding table :math:`E` initialised from the course's GloVe vectors (chapter 2). Each
remedy changes one thing:

* **weight decay** adds :math:`\lambda\,\theta` to each step (AdamW's decoupled form);
* **dropout** zeroes each feature with probability :math:`p` during training, scaling the rest by
  :math:`1/(1-p)`;
* **early stopping** keeps the weights of the epoch with the best validation loss;
* **augmentation**: *token dropout* deletes each word with probability :math:`p`; *synonym
  replacement* swaps a word for one of its nearest GloVe neighbours with probability :math:`p`;
* a **smaller model** (no hidden layer: a linear classifier on the averaged embeddings);
* **freezing the lower layer** (the embedding table keeps its GloVe values).
"""
from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from ..transformer.layers import masked_mean

__all__ = ["tokenize", "Vocabulary", "BagOfEmbeddings", "TrainConfig", "token_dropout", "synonym_replace",
           "synonym_table", "patience_stop", "train_classifier", "REMEDIES", "remedy_config", "learning_curve"]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks, as in the shipped vectors' vocabulary."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word -> row of the shipped GloVe table; id 0 is padding, id 1 an unknown word."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        self.words = ["<pad>", "<unk>"] + list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        D = vectors.shape[1]
        self.vectors = np.vstack([np.zeros((2, D), np.float32), np.asarray(vectors, np.float32)])   # (V, D)

    @classmethod
    def shipped(cls, name: str = "glove") -> "Vocabulary":
        from ..embeddings.shipped import load_shipped
        wv = load_shipped(name)
        return cls(wv.index_to_key, wv.vectors)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[self.index.get(w, 1) for w in tokenize(t)] or [1] for t in texts]


class BagOfEmbeddings(nn.Module):
    """Mean of word embeddings -> dropout -> [Linear -> ReLU -> dropout] -> Linear.

    ``hidden_size=0`` drops the hidden layer (a linear classifier on the averaged embeddings).
    """

    def __init__(self, vectors: np.ndarray, num_labels: int, hidden_size: int = 256, dropout: float = 0.0,
                 freeze_embeddings: bool = False):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embeddings = nn.Embedding.from_pretrained(torch.tensor(vectors), freeze=freeze_embeddings,
                                                       padding_idx=0)
        D = vectors.shape[1]
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_size:
            layers += [nn.Linear(D, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_size or D, num_labels))
        self.classifier = nn.Sequential(*layers)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = masked_mean(self.embeddings(input_ids), input_ids != 0)             # (B, D) mean over words
        return self.classifier(h)                                              # (B, K)


@dataclass
class TrainConfig:
    """One training run; each remedy changes one field (see ``REMEDIES``)."""
    epochs: int = 40
    lr: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    dropout: float = 0.0
    hidden_size: int = 256
    freeze_embeddings: bool = False
    early_stopping: bool = False     # keep the epoch with the lowest validation loss
    augment: str = "none"            # "none", "token_dropout" or "synonym"
    augment_p: float = 0.15
    seed: int = 0

    def __post_init__(self):
        if self.augment not in ("none", "token_dropout", "synonym"):
            raise ValueError(f"augment must be 'none', 'token_dropout' or 'synonym', got {self.augment!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")


# (name, changes to the baseline TrainConfig)
REMEDIES = {
    "baseline": {},
    "weight decay": {"weight_decay": 1.0},
    "dropout": {"dropout": 0.5},
    "early stopping": {"early_stopping": True},
    "token dropout": {"augment": "token_dropout"},
    "synonyms": {"augment": "synonym"},
    "smaller model": {"hidden_size": 0},
    "frozen embeddings": {"freeze_embeddings": True},
}


def remedy_config(name: str, base: TrainConfig | None = None) -> TrainConfig:
    if name not in REMEDIES:
        raise ValueError(f"unknown remedy {name!r}; choose one of {list(REMEDIES)}")
    return replace(base or TrainConfig(), **REMEDIES[name])


# ----------------------------------------------------------------------------- augmentation

def token_dropout(ids: list[int], p: float, rng: np.random.Generator) -> list[int]:
    """Delete each token with probability ``p``; never return an empty list (keep one token)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    kept = [t for t in ids if rng.random() >= p]
    return kept or [ids[int(rng.integers(len(ids)))]]


def synonym_table(vocab: Vocabulary, topn: int = 5, restrict: Sequence[int] | None = None) -> dict[int, np.ndarray]:
    """For each word id (in ``restrict``, default all), its ``topn`` nearest neighbours by cosine."""
    V = vocab.vectors
    unit = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-8)      # (V, D) unit rows
    ids = np.arange(2, len(V)) if restrict is None else np.array(sorted(set(restrict) - {0, 1}), dtype=int)
    table = {}
    for start in range(0, len(ids), 512):
        chunk = ids[start:start + 512]
        sim = unit[chunk] @ unit.T                                             # (b, V) cosine
        sim[np.arange(len(chunk)), chunk] = -np.inf
        sim[:, :2] = -np.inf
        top = np.argpartition(-sim, topn, axis=1)[:, :topn]
        for i, row in zip(chunk, top):
            table[int(i)] = row[np.argsort(-sim[i == chunk][0][row])]
    return table


def synonym_replace(ids: list[int], p: float, table: dict[int, np.ndarray], rng: np.random.Generator) -> list[int]:
    """Replace each token that has neighbours, with probability ``p``, by one of them at random."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    return [int(rng.choice(table[t])) if t in table and rng.random() < p else t for t in ids]


# ----------------------------------------------------------------------------- training

def patience_stop(valid_losses: Sequence[float], patience: int, min_delta: float = 0.0) -> tuple[int, int]:
    """Early stopping with patience on a sequence of per-epoch validation losses.

    An epoch *improves* when its loss is below the best so far minus ``min_delta``. Training stops
    after the epoch that ends ``patience`` epochs in a row without improvement (or at the last epoch).
    Returns ``(best_epoch, stop_epoch)``, 0-based; the weights to keep are those of ``best_epoch``.
    """
    if not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be an int >= 1, got {patience!r}")
    losses = [float(v) for v in valid_losses]
    if not losses:
        raise ValueError("valid_losses is empty: give one validation loss per epoch")
    if not np.isfinite(losses).all():
        raise ValueError("valid_losses contains NaN or inf: the training diverged; lower the learning rate")
    best, waited = 0, 0
    for epoch in range(1, len(losses)):
        if losses[epoch] < losses[best] - min_delta:                           # improved: reset the counter
            best, waited = epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return best, epoch
    return best, len(losses) - 1


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    T = max(len(r) for r in rows)
    out = torch.zeros(len(rows), T, dtype=torch.long)                          # (B, T), 0 = padding
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(r)
    return out


@torch.no_grad()
def _score(model, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    logits = model(X)
    return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(-1) == y).float().mean())


def train_classifier(config: TrainConfig, vocab: Vocabulary, train_ids, train_y, valid_ids, valid_y,
                     num_labels: int, synonyms: dict | None = None) -> dict:
    """Train one :class:`BagOfEmbeddings`; return per-epoch train/valid loss and accuracy and the final
    (or, with early stopping, best) model's scores. Train scores are measured without dropout/augmentation."""
    cfg = config
    if len(train_ids) != len(train_y) or len(valid_ids) != len(valid_y):
        raise ValueError("give one label per example (train_ids/train_y and valid_ids/valid_y lengths differ)")
    if cfg.augment == "synonym" and synonyms is None:
        raise ValueError("augment='synonym' needs synonyms=synonym_table(vocab, restrict=training word ids)")
    # Keep only the rows of the table this run can touch (same model, ~10x faster steps): ids are
    # remapped to 0..U-1, padding and unknown stay 0 and 1.
    used = {0, 1} | {t for r in list(train_ids) + list(valid_ids) for t in r}
    if cfg.augment == "synonym":
        used |= {int(n) for t in list(used) if t in synonyms for n in synonyms[t]}
    used = np.array(sorted(used))
    remap = np.zeros(len(vocab.vectors), dtype=np.int64)
    remap[used] = np.arange(len(used))
    train_ids = [remap[r].tolist() for r in train_ids]
    valid_ids = [remap[r].tolist() for r in valid_ids]
    if synonyms is not None:
        synonyms = {int(remap[t]): remap[n] for t, n in synonyms.items() if t in set(used.tolist())}
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = BagOfEmbeddings(vocab.vectors[used], num_labels, cfg.hidden_size, cfg.dropout, cfg.freeze_embeddings)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    ytr = torch.tensor(np.asarray(train_y), dtype=torch.long)
    yva = torch.tensor(np.asarray(valid_y), dtype=torch.long)
    Xtr, Xva = _pad(train_ids), _pad(valid_ids)
    hist = {k: [] for k in ("train_loss", "train_acc", "valid_loss", "valid_acc")}
    best = (np.inf, None, 0)
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(train_ids))
        for start in range(0, len(order), cfg.batch_size):
            rows = [train_ids[i] for i in order[start:start + cfg.batch_size]]
            if cfg.augment == "token_dropout":
                rows = [token_dropout(r, cfg.augment_p, rng) for r in rows]
            elif cfg.augment == "synonym":
                rows = [synonym_replace(r, cfg.augment_p, synonyms, rng) for r in rows]
            loss = nn.functional.cross_entropy(model(_pad(rows)), ytr[order[start:start + cfg.batch_size]])
            opt.zero_grad()
            loss.backward()
            opt.step()
        for split, (X, y) in (("train", (Xtr, ytr)), ("valid", (Xva, yva))):
            l, a = _score(model, X, y)
            hist[f"{split}_loss"].append(l)
            hist[f"{split}_acc"].append(a)
        if cfg.early_stopping and hist["valid_loss"][-1] < best[0]:
            best = (hist["valid_loss"][-1], copy.deepcopy(model.state_dict()), epoch)
    chosen = cfg.epochs - 1
    if cfg.early_stopping:
        model.load_state_dict(best[1])
        chosen = best[2]
    return {"config": asdict(cfg), "history": hist, "epoch": chosen, "model": model,
            "train_acc": hist["train_acc"][chosen], "valid_acc": hist["valid_acc"][chosen],
            "gap": hist["train_acc"][chosen] - hist["valid_acc"][chosen]}


def learning_curve(sizes: Sequence[int], config: TrainConfig, vocab: Vocabulary, train_ids, train_y,
                   valid_ids, valid_y, num_labels: int, seed: int = 0) -> list[dict]:
    """Train on the first n of a seeded permutation of the training set for each n in ``sizes``."""
    order = np.random.default_rng(seed).permutation(len(train_ids))
    out = []
    for n in sizes:
        if not 1 <= n <= len(train_ids):
            raise ValueError(f"training size {n} is outside 1..{len(train_ids)}")
        idx = order[:n]
        r = train_classifier(config, vocab, [train_ids[i] for i in idx], np.asarray(train_y)[idx],
                             valid_ids, valid_y, num_labels)
        out.append({"n": int(n), "train_acc": r["train_acc"], "valid_acc": r["valid_acc"], "gap": r["gap"],
                    "history": r["history"]})
    return out
