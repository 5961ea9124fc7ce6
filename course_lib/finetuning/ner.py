r"""Token classification (named-entity recognition) with BERT: BIO tags, WordPiece alignment, seqeval.

**BIO tags.** Each word gets ``B-type`` (first word of an entity), ``I-type`` (inside one) or ``O``
(outside): ``New/B-geo-loc York/I-geo-loc is/O``. With :math:`E` entity types there are
:math:`2E + 1` labels.

**One label per word, many pieces per word.** WordPiece splits ``Kardashians`` into
``ka ##rda ##shian ##s``. We label the *first* piece of every word with the word's tag and give the
other pieces (and ``[CLS]``/``[SEP]``/padding) the label ``-100``, which the cross-entropy ignores.
At prediction time the first piece's label is the word's label. The map piece -> word is Hugging
Face's ``word_ids()``; :func:`wordpiece_word_ids` computes the same map with our own WordPiece.

**Model.** :math:`z_t = W\,\mathrm{Dropout}(h_t) + b` for every position :math:`t` of the last hidden
layer (no pooler), :math:`\mathcal{L} = \mathrm{mean}_{t:\,y_t \ne -100} -\log\mathrm{softmax}(z_t)_{y_t}`.

**Metric.** Entity-level precision, recall and F1 (``seqeval``, CoNLL rules): an entity counts as
correct only when its type and both boundaries are right.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.bert import BertConfig, BertModel
from ..transformer.loading import load_hf_state_dict
from .classification import check_labels, read_bert_folder
from .data import check_tokenizer, make_batches

__all__ = ["TokenClassifierOutput", "BertForTokenClassification", "check_sentences", "label_list",
           "split_sentences", "wordpiece_word_ids", "hf_word_ids", "align_labels", "encode_ner",
           "predict_tags", "ner_scores", "GazetteerBaseline"]

IGNORE = -100          # label of positions the loss skips (as Hugging Face / torch cross_entropy)


@dataclass
class TokenClassifierOutput:
    """Field names as in ``transformers.modeling_outputs.TokenClassifierOutput``."""
    loss: torch.Tensor | None
    logits: torch.Tensor                      # (B, T, K)


class BertForTokenClassification(nn.Module):
    """BERT (no pooler) + dropout + a linear layer on every token (Hugging Face names ``bert.*``, ``classifier``).

    Parameters
    ----------
    config : BertConfig
    num_labels : int
        Number of tags K (>= 2), e.g. 21 for WNUT-16's 10 types in BIO.
    classifier_dropout : float or None
        None uses ``config.hidden_dropout_prob`` (as Hugging Face).
    """
    hf_transposed: tuple = ()
    hf_ignored: tuple = ("embeddings.position_ids",)
    hf_tied: tuple = ()

    def __init__(self, config: BertConfig, num_labels: int, classifier_dropout: float | None = None):
        super().__init__()
        if not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an int >= 2 (the number of tags), got {num_labels!r}")
        self.config, self.num_labels = config, num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if classifier_dropout is None else classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=config.initializer_range)    # N(0, 0.02), bias 0, as HF
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                **unused) -> TokenClassifierOutput:
        """Logits (B, T, K); with ``labels`` (B, T) (``-100`` = ignore) also the mean cross-entropy."""
        h = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(h))                     # z_t = W Drop(h_t) + b, (B, T, K)
        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)} (one tag id "
                                 f"per token, -100 to ignore), got {tuple(labels.shape)}")
            check_labels(labels, self.num_labels, ignore_index=IGNORE)
            # mean over the positions whose label is not -100
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=IGNORE)
        return TokenClassifierOutput(loss, logits)

    @classmethod
    def from_pretrained(cls, path, num_labels: int, classifier_dropout: float | None = None,
                        **config_overrides) -> "BertForTokenClassification":
        """Encoder weights from a local BERT folder (MiniLM, or a ``bert.*`` checkpoint), a new classifier.

        A pooler in the checkpoint is dropped (token classification does not use it); a ``classifier``
        of the right size is kept. Returned in train mode.
        """
        path = Path(path)
        config, state, encoder = read_bert_folder(path, **config_overrides)
        model = cls(config, num_labels, classifier_dropout)
        encoder = {k: v for k, v in encoder.items() if not k.startswith("pooler.")}   # unused by token heads
        load_hf_state_dict(model.bert, encoder)
        head = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("classifier.")}
        if head:
            if head["weight"].shape[0] != num_labels:
                raise ValueError(f"{path} holds a classifier for {head['weight'].shape[0]} tags, "
                                 f"not num_labels={num_labels}; pass the matching num_labels")
            model.classifier.load_state_dict(head)
        return model.train()


# ----------------------------------------------------------------------------- data

def check_sentences(sentences) -> list[list[tuple[str, str]]]:
    """Check a NER dataset: a non-empty list of sentences, each a non-empty list of ``(word, tag)`` str pairs."""
    sentences = list(sentences)
    if not sentences:
        raise ValueError("no sentences given: pass at least one sentence of (word, tag) pairs")
    for i, sent in enumerate(sentences):
        if isinstance(sent, str) or not len(sent):
            raise ValueError(f"sentence {i} is {'a str' if isinstance(sent, str) else 'empty'}; each sentence "
                             "must be a non-empty list of (word, tag) pairs, like course_lib.data.load_wnut16()")
        for pair in sent:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise ValueError(f"sentence {i} holds {pair!r}; expected (word, tag) pairs of two str "
                                 "(a dataset with 'tokens' and 'ner_tags' columns: zip them per sentence)")
    return sentences


def label_list(sentences) -> list[str]:
    """``["O", "B-t1", "I-t1", "B-t2", ...]`` for the entity types in the data (types sorted)."""
    tags = {tag for sent in check_sentences(sentences) for _, tag in sent}
    bad = sorted(t for t in tags if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2))
    if bad:
        raise ValueError(f"tags {bad[:5]} are not BIO tags; use 'O', 'B-<type>' or 'I-<type>'")
    types = sorted({t[2:] for t in tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def split_sentences(sentences, test_fraction: float = 0.2, seed: int = 0):
    """A fixed, seeded split ``(train, test)``: WNUT-16 ships here as one file with no split marked.

    The sentence order is permuted with ``numpy.random.default_rng(seed)``; the last
    ``round(test_fraction * N)`` sentences of the permutation are the test set.
    """
    sentences = check_sentences(sentences)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(sentences))
    n_test = int(round(test_fraction * len(sentences)))
    return [sentences[i] for i in order[:-n_test]], [sentences[i] for i in order[-n_test:]]


def wordpiece_word_ids(tokenizer, words: list[str], max_length: int | None = None):
    """Our WordPiece's version of ``tokenizer(words, is_split_into_words=True).word_ids()``.

    Every word is tokenised on its own (BERT's basic tokenizer may cut it further at punctuation;
    all its pieces keep the word's index); ``[CLS]`` and ``[SEP]`` get ``None``. With
    ``max_length`` the pieces are truncated so that ``[CLS] ... [SEP]`` has at most that many.

    Returns
    -------
    input_ids : list of int
    word_ids : list of (int or None), same length
    """
    cfg = tokenizer.config
    ids, word_ids = [tokenizer.vocab[cfg.cls_token]], [None]
    for w, word in enumerate(words):
        pieces = tokenizer.tokenize(word)              # a word of control characters only has no pieces
        ids += [tokenizer.vocab[p] for p in pieces]
        word_ids += [w] * len(pieces)
    if max_length is not None:
        ids, word_ids = ids[:max_length - 1], word_ids[:max_length - 1]    # keep room for [SEP]
    return ids + [tokenizer.vocab[cfg.sep_token]], word_ids + [None]


def hf_word_ids(tokenizer, words: list[str], max_length: int | None = None):
    """``(input_ids, word_ids)`` from a Hugging Face *fast* tokenizer (``is_split_into_words=True``)."""
    enc = tokenizer(words, is_split_into_words=True, truncation=max_length is not None, max_length=max_length)
    return enc["input_ids"], enc.word_ids()


def align_labels(word_ids, word_labels: list[int]) -> list[int]:
    """Label the first piece of every word with its word's label; ``-100`` for later pieces and specials.

    >>> align_labels([None, 0, 0, 1, None], [3, 5])
    [-100, 3, -100, 5, -100]
    """
    labels, previous = [], None
    for w in word_ids:
        if w is None or w == previous:
            labels.append(IGNORE)                      # [CLS]/[SEP]/padding or a continuation piece
        else:
            labels.append(word_labels[w])              # first piece of word w
        previous = w
    return labels


def _word_ids_fn(tokenizer):
    from ..tokenization.wordpiece import WordPieceTokenizer
    if isinstance(tokenizer, WordPieceTokenizer):
        return wordpiece_word_ids
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{type(tokenizer).__name__} gives no word_ids(); use a fast Hugging Face tokenizer "
                        "(AutoTokenizer.from_pretrained(path)) or course_lib's WordPieceTokenizer")
    return hf_word_ids


def encode_ner(sentences, tokenizer, label_names: list[str], max_length: int = 128, batch_size: int = 32,
               model=None, sort_by_length: bool = True) -> list[dict[str, torch.Tensor]]:
    """Sentences of ``(word, tag)`` -> padded batches with WordPiece-aligned ``labels`` (-100 off first pieces).

    Each batch also carries ``index`` (the sentences' positions) and ``word_ids`` (B, T) (-1 where
    ``None``), which :func:`predict_tags` uses to map predictions back to words.

    Raises
    ------
    ValueError
        For tags outside ``label_names``, empty sentences, or (with ``model``) a tokenizer whose
        vocabulary does not match the model's embedding table.
    """
    sentences = check_sentences(sentences)
    if model is not None:
        check_tokenizer(tokenizer, model)
    index = {t: i for i, t in enumerate(label_names)}
    unknown = sorted({tag for s in sentences for _, tag in s if tag not in index})
    if unknown:
        raise ValueError(f"tags {unknown[:5]} are outside the label set {list(label_names)}; build the label "
                         "set from the training data (label_list(train)) or map the tags first")
    word_ids_of = _word_ids_fn(tokenizer)
    all_ids, all_labels, all_words = [], [], []
    for sent in sentences:
        ids, word_ids = word_ids_of(tokenizer, [w for w, _ in sent], max_length)
        all_ids.append(ids)
        all_labels.append(align_labels(word_ids, [index[t] for _, t in sent]))
        all_words.append([-1 if w is None else w for w in word_ids])
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = pad_id if pad_id is not None else tokenizer.vocab[tokenizer.config.pad_token]
    batches = make_batches(all_ids, all_labels, batch_size=batch_size, pad_token_id=pad_id,
                           sort_by_length=sort_by_length)
    for batch in batches:                              # word ids, padded with -1 like the labels' -100
        wid = torch.full_like(batch["input_ids"], -1)
        for row, i in enumerate(batch["index"].tolist()):
            wid[row, :len(all_words[i])] = torch.as_tensor(all_words[i])
        batch["word_ids"] = wid
    return batches


# ----------------------------------------------------------------------------- prediction and scores

@torch.no_grad()
def predict_tags(model, batches, label_names: list[str], num_sentences: int | None = None,
                 sentence_lengths: list[int] | None = None) -> list[list[str]]:
    """Word-level tags from the first piece of each word; words cut by truncation (or with no piece) get ``"O"``.

    Parameters
    ----------
    batches : output of :func:`encode_ner` (with ``index`` and ``word_ids``).
    sentence_lengths : number of words of every sentence, in the original order.
    """
    if sentence_lengths is None:
        raise ValueError("pass sentence_lengths=[len(s) for s in sentences] to map predictions back to words")
    out = [["O"] * n for n in sentence_lengths]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    for batch in batches:
        logits = model(batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        pred = logits.argmax(-1).cpu()                                              # (B, T)
        for row, i in enumerate(batch["index"].tolist()):
            wid = batch["word_ids"][row]
            prev = -1
            for t in range(wid.shape[0]):
                w = int(wid[t])
                if w >= 0 and w != prev:                     # the first piece of word w
                    out[i][w] = label_names[int(pred[row, t])]
                prev = w
    model.train(was_training)
    return out


def ner_scores(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict:
    """Entity-level ``precision``, ``recall``, ``f1`` (seqeval, micro-averaged) and a per-type report."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    if len(true_tags) != len(pred_tags) or any(len(a) != len(b) for a, b in zip(true_tags, pred_tags)):
        raise ValueError("true_tags and pred_tags must have the same sentences and the same number of words each")
    return {"precision": precision_score(true_tags, pred_tags), "recall": recall_score(true_tags, pred_tags),
            "f1": f1_score(true_tags, pred_tags),
            "report": classification_report(true_tags, pred_tags, output_dict=True, zero_division=0)}


# ----------------------------------------------------------------------------- baseline

def _entities(tags: list[str]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` spans of a BIO sequence (end exclusive); a stray ``I-`` starts an entity."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(tags + ["O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            spans.append((start, i, kind))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return spans


class GazetteerBaseline:
    """Memorise the training entities: tag any later occurrence of a known entity string with its type.

    ``fit`` collects every entity (lower-cased word tuple) with its most frequent type, keeping only
    strings that are tagged as an entity in at least ``min_precision`` of their training occurrences
    (so "the" or "new" alone never become entities). ``predict`` scans left to right, longest match first.
    """

    def __init__(self, min_precision: float = 0.5, max_words: int = 6):
        self.min_precision, self.max_words = min_precision, max_words
        self.lexicon: dict[tuple[str, ...], str] = {}

    def fit(self, sentences) -> "GazetteerBaseline":
        sentences = check_sentences(sentences)
        types: dict[tuple, Counter] = defaultdict(Counter)
        for sent in sentences:
            words = [w.lower() for w, _ in sent]
            for s, e, kind in _entities([t for _, t in sent]):
                if e - s <= self.max_words:
                    types[tuple(words[s:e])][kind] += 1
        seen = Counter()                               # how often each known string occurs at all
        for sent in sentences:
            words = [w.lower() for w, _ in sent]
            for n in range(1, self.max_words + 1):
                for s in range(len(words) - n + 1):
                    key = tuple(words[s:s + n])
                    if key in types:
                        seen[key] += 1
        self.lexicon = {k: c.most_common(1)[0][0] for k, c in types.items()
                        if sum(c.values()) / seen[k] >= self.min_precision}
        return self

    def predict(self, sentences) -> list[list[str]]:
        out = []
        for sent in check_sentences(sentences):
            words = [w.lower() for w, _ in sent]
            tags, i = ["O"] * len(words), 0
            while i < len(words):
                for n in range(min(self.max_words, len(words) - i), 0, -1):     # longest match first
                    kind = self.lexicon.get(tuple(words[i:i + n]))
                    if kind:
                        tags[i:i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                        i += n
                        break
                else:
                    i += 1
            out.append(tags)
        return out
