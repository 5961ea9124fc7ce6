r"""Texts and labels -> padded batches, with the checks that catch bad input early.

Fine-tuning data is a table with a text column and a label column. Before anything reaches torch
we check it, because the errors torch gives later are cryptic (``IndexError: Target 7 is out of
bounds`` deep inside the loss):

- the table has the expected columns (:func:`check_columns`);
- every text has at least one non-space character (:func:`check_texts`);
- every label belongs to the label set (:func:`encode_labels`);
- the tokenizer's vocabulary has the size of the model's embedding table (:func:`check_tokenizer`).

**Dynamic padding, length-bucketed batches.** A batch is padded to its *own* longest sequence, not
to ``max_length``. If the examples are first sorted by length and cut into batches of similar
lengths, a batch of 8-token questions costs 8 positions per row instead of 64; the attention cost
grows with :math:`T^2`, so on a CPU this is the largest speed-up available. The order of the
*batches* is then shuffled every epoch (:func:`course_lib.finetuning.loop.fit`), so training still
sees the data in random order at batch granularity.

Splits: TREC-6 ships the standard 5,452 / 500 split (Li and Roth, 2002); Rotten Tomatoes ships
none, so :func:`rotten_tomatoes_splits` makes a fixed, seeded, stratified 80 / 10 / 10 split after
dropping duplicate snippets (a duplicate across train and test would leak the answer).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TaskData", "check_columns", "check_texts", "encode_labels", "check_tokenizer", "tokenize_texts",
           "make_batches", "rotten_tomatoes_splits", "trec_splits", "load_task", "TASKS"]

# The CSV numbers the coarse classes in order of first appearance; these names match the standard
# test-set counts (DESC 138, ENTY 94, ABBR 9, HUM 65, NUM 113, LOC 81).
TREC_LABELS = ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]
RT_LABELS = ["rotten", "fresh"]
TASKS = ("trec", "rotten_tomatoes")


@dataclass
class TaskData:
    """A classification task: three DataFrames with columns ``text`` and ``label`` (ints) plus names."""
    name: str
    train: "object"            # pandas.DataFrame
    valid: "object"
    test: "object"
    label_names: list[str]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


# ----------------------------------------------------------------------------- checks

def check_columns(table, required: Sequence[str], what: str = "dataset") -> None:
    """Raise ``KeyError`` naming the missing columns of a DataFrame / ``datasets.Dataset`` / dict.

    Examples
    --------
    >>> check_columns({"text": [], "label": []}, ["text", "label"])
    """
    if hasattr(table, "column_names"):            # datasets.Dataset
        columns = list(table.column_names)
    elif hasattr(table, "columns"):               # pandas.DataFrame
        columns = list(table.columns)
    elif hasattr(table, "keys"):                  # dict of columns
        columns = list(table.keys())
    else:
        raise TypeError(f"expected a DataFrame, a datasets.Dataset or a dict of columns, got {type(table).__name__}")
    missing = [c for c in required if c not in columns]
    if missing:
        raise KeyError(f"the {what} has no column {missing}; it has {columns}. Rename your columns "
                       f"(e.g. df.rename(columns={{...}})) or pass text_column=/label_column= to name them")


def check_texts(texts: Sequence[str]) -> list[str]:
    """Return the texts as a list of str; ``ValueError`` for an empty list, non-strings or blank texts."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts given: pass at least one text")
    bad_type = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad_type:
        raise TypeError(f"texts must be str; positions {bad_type[:5]} hold "
                        f"{type(texts[bad_type[0]]).__name__} (e.g. NaN from a CSV): drop or convert them")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"{len(empty)} empty text(s) at positions {empty[:5]}: a blank text has no tokens "
                         "to classify; remove those rows (df[df.text.str.strip() != ''])")
    return texts


def encode_labels(labels: Sequence, label_names: Sequence[str]) -> np.ndarray:
    """Map labels (names from ``label_names`` or integer ids ``0..K-1``) to an int64 array.

    Raises ``ValueError`` listing the labels that are not in the label set.
    """
    names = list(label_names)
    index = {n: i for i, n in enumerate(names)}
    out, bad = [], []
    for y in labels:
        if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
            ok = 0 <= int(y) < len(names)
            out.append(int(y))
        else:
            ok = y in index
            out.append(index.get(y, -1))
        if not ok:
            bad.append(y)
    if bad:
        shown = sorted({repr(b) for b in bad})[:5]
        raise ValueError(f"{len(bad)} label(s) outside the label set, e.g. {', '.join(shown)}; the set is "
                         f"{names} (ids 0..{len(names) - 1}). Fix the data or extend label_names")
    return np.asarray(out, dtype=np.int64)


def check_tokenizer(tokenizer, model_or_vocab_size) -> None:
    """``ValueError`` when the tokenizer's vocabulary size differs from the model's embedding rows.

    A larger vocabulary produces ids the embedding table does not have (an ``IndexError`` in the
    middle of the forward pass); a different one of the same size means the ids mean other words.
    """
    if isinstance(model_or_vocab_size, int):
        rows = model_or_vocab_size
    else:
        model = model_or_vocab_size
        bert = getattr(model, "bert", model)
        rows = bert.embeddings.word_embeddings.num_embeddings
    size = len(tokenizer)
    if size != rows:
        raise ValueError(f"the tokenizer has {size} tokens but the model's embedding table has {rows} rows; "
                         "use the tokenizer saved with the model (AutoTokenizer.from_pretrained(the same folder))")


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int = 64) -> list[list[int]]:
    """Token ids with ``[CLS] ... [SEP]``, truncated to ``max_length`` (no padding yet)."""
    texts = check_texts(texts)
    if max_length < 3:
        raise ValueError(f"max_length must be >= 3 ([CLS], one token, [SEP]), got {max_length}")
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def make_batches(input_ids: Sequence[Sequence[int]], labels=None, *, batch_size: int = 32,
                 pad_token_id: int = 0, sort_by_length: bool = True) -> list[dict[str, torch.Tensor]]:
    """Cut tokenised examples into padded batches (dicts of ``input_ids``, ``attention_mask``,
    ``token_type_ids`` and ``labels``).

    Parameters
    ----------
    input_ids : list of id lists (ragged)
    labels : int array (N,) or None. A list of id lists (ragged, e.g. token labels) is padded with -100.
    sort_by_length : bool
        Group examples of similar length (fast); the batch *order* is shuffled later by ``fit``.
        Each batch keeps an ``index`` tensor with the examples' original positions.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(input_ids)
    if n == 0:
        raise ValueError("no examples to batch")
    if hasattr(labels, "to_numpy"):            # a pandas Series: index by position, not by its index labels
        labels = labels.to_numpy()
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} examples but {len(labels)} labels: give one label per example")
    lengths = np.array([len(x) for x in input_ids])
    order = np.argsort(lengths, kind="stable") if sort_by_length else np.arange(n)
    batches = []
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        T = int(lengths[idx].max())
        ids = torch.full((len(idx), T), pad_token_id, dtype=torch.long)          # (B, T)
        mask = torch.zeros((len(idx), T), dtype=torch.long)                      # 1 = real token
        for row, i in enumerate(idx):
            ids[row, :lengths[i]] = torch.as_tensor(input_ids[i])
            mask[row, :lengths[i]] = 1
        batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
                 "index": torch.as_tensor(idx)}
        if labels is not None:
            first = labels[idx[0]]
            if np.ndim(first) == 0:
                batch["labels"] = torch.as_tensor(np.asarray(labels)[idx], dtype=torch.long)   # (B,)
            else:
                lab = torch.full((len(idx), T), -100, dtype=torch.long)                      # (B, T)
                for row, i in enumerate(idx):
                    lab[row, :len(labels[i])] = torch.as_tensor(labels[i])
                batch["labels"] = lab
        batches.append(batch)
    return batches


# ----------------------------------------------------------------------------- tasks

def _split_indices(y: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Stratified split of positions 0..N-1 into len(fractions) parts (per class, seeded)."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for k, chunk in enumerate(np.split(idx, cuts)):
            parts[k].extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=int)) for p in parts]


def rotten_tomatoes_splits(seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> TaskData:
    """Rotten Tomatoes (``course_lib.data.load_rotten_tomatoes``): dedupe, then a stratified split.

    Exact duplicate snippets are dropped (keeping the first), so that no test text is also a
    training text; the remaining rows are split per class with ``numpy.random.default_rng(seed)``.
    """
    from .. import data
    if not np.isclose(sum(fractions), 1.0) or len(fractions) != 3:
        raise ValueError(f"fractions must be three numbers (train, valid, test) summing to 1, got {fractions}")
    df = data.load_rotten_tomatoes()
    df = df[df["text"].str.strip() != ""].drop_duplicates("text").reset_index(drop=True)
    parts = _split_indices(df["label"].to_numpy(), fractions, seed)
    tr, va, te = (df.iloc[p][["text", "label"]].reset_index(drop=True) for p in parts)
    return TaskData("rotten_tomatoes", tr, va, te, list(RT_LABELS))


def trec_splits(seed: int = 0, valid_fraction: float = 0.1) -> TaskData:
    """TREC-6: the standard 5,452 training / 500 test questions; ``valid_fraction`` of the training
    set (stratified, seeded) is held out for validation (0 keeps all 5,452 for training)."""
    from .. import data
    train, test = data.load_trec("train"), data.load_trec("test")
    to_df = lambda d: d.assign(label=encode_labels(d["label_coarse"], TREC_LABELS))[["text", "label"]]  # noqa: E731
    train, test = to_df(train), to_df(test)
    if valid_fraction > 0:
        tr, va = _split_indices(train["label"].to_numpy(), (1 - valid_fraction, valid_fraction), seed)
        train, valid = train.iloc[tr].reset_index(drop=True), train.iloc[va].reset_index(drop=True)
    else:
        valid = train.iloc[:0]
    return TaskData("trec", train, valid, test.reset_index(drop=True), list(TREC_LABELS))


def load_task(name: str, seed: int = 0, **kwargs) -> TaskData:
    """``"trec"`` or ``"rotten_tomatoes"`` as a :class:`TaskData`."""
    if name == "trec":
        return trec_splits(seed, **kwargs)
    if name in ("rotten_tomatoes", "rt"):
        return rotten_tomatoes_splits(seed, **kwargs)
    raise ValueError(f"unknown task {name!r}; choose one of {TASKS}")
