r"""Choosing a model: accuracy, latency, memory and size of the models available offline, on TREC-6.

The question "which pretrained model?" has no answer without a task and a budget. This module
measures the candidates on one common task (TREC-6 question classification, the standard 500-question
test set) with the same three costs a deployment pays:

* **parameters** (and so the bytes to store and ship);
* **latency per example** on a CPU at batch 1 (one request at a time) and batch 32 (throughput);
* **peak memory** (resident set size of a fresh process that loaded the model and ran it).

A prompted decoder classifies by **scoring the label words**: the prompt ends in ``"Answer:"`` and
the predicted class is :math:`\arg\max_k \log p(\text{word}_k \mid \text{prompt})`, where each label
word (``" description"``, ``" entity"``, ...) is a single token of SmolLM2's tokenizer, so one
forward pass scores all six. No generation, no parsing of free text.
"""
from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["TREC_LABEL_WORDS", "INSTRUCTION", "prompt_prefix", "build_prompt", "few_shot_examples", "LabelScorer",
           "latency_per_example", "peak_rss_mib", "pareto_front"]

# TREC-6 coarse classes (course_lib.finetuning.data.TREC_LABELS order) -> one word each
TREC_LABEL_WORDS = ["description", "entity", "abbreviation", "person", "number", "location"]
INSTRUCTION = ("Classify the question by the type of its answer: description, entity, abbreviation, "
               "person, number or location.")


def prompt_prefix(examples: Sequence[tuple[str, int]] = (), label_words: Sequence[str] = TREC_LABEL_WORDS,
                  instruction: str = INSTRUCTION) -> str:
    """The part of the prompt shared by every question: the instruction, the examples, and the last
    ``"Question:"`` (ending there keeps the token boundary stable, see :class:`LabelScorer`)."""
    lines = [instruction, ""]
    for text, label in examples:
        if not 0 <= int(label) < len(label_words):
            raise ValueError(f"example label {label} is outside 0..{len(label_words) - 1}")
        lines += [f"Question: {text.strip()}", f"Answer: {label_words[int(label)]}", ""]
    return "\n".join(lines) + "\nQuestion:"


def build_prompt(question: str, examples: Sequence[tuple[str, int]] = (),
                 label_words: Sequence[str] = TREC_LABEL_WORDS, instruction: str = INSTRUCTION) -> str:
    """The zero-shot (no ``examples``) or few-shot prompt for one question.

    Format::

        <instruction>

        Question: <example question>
        Answer: <label word>
        ...
        Question: <question>
        Answer:
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")
    return prompt_prefix(examples, label_words, instruction) + f" {question.strip()}\nAnswer:"


def few_shot_examples(texts: Sequence[str], labels, per_class: int = 1, seed: int = 0) -> list[tuple[str, int]]:
    """``per_class`` training examples of each class, drawn with ``seed``, in a shuffled order."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picked = [int(i) for c in np.unique(labels)
              for i in rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)]
    return [(texts[i], int(labels[i])) for i in rng.permutation(picked)]


class LabelScorer:
    """Classify with a causal LM by the log-probability of each label word after the prompt.

    Parameters
    ----------
    model : our ``LlamaForCausalLM`` (``forward(ids, attention_mask=, position_ids=) -> (B, T, V)``)
    tokenizer : its tokenizer; each ``" " + word`` must be a single token
    label_words : the class names, in class-id order
    """

    def __init__(self, model, tokenizer, label_words: Sequence[str] = TREC_LABEL_WORDS):
        self.model, self.tokenizer = model.eval(), tokenizer
        ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in label_words]
        bad = [w for w, i in zip(label_words, ids) if len(i) != 1]
        if bad:
            raise ValueError(f"label words {bad} are several tokens; choose words that are one token each")
        self.label_ids = torch.tensor([i[0] for i in ids])                     # (K,)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id

    @torch.inference_mode()
    def _prefix_cache(self, prefix: tuple[int, ...]):
        """Keys/values of the shared prefix, computed once and kept (a server's prompt cache)."""
        if getattr(self, "_cached_prefix", None) != prefix:
            cache = self.model.new_cache(1, len(prefix))
            self.model(torch.tensor([prefix]), cache=cache)
            self._cached_prefix, self._cached_kv = prefix, (cache.keys, cache.values)
        return self._cached_kv

    @torch.inference_mode()
    def label_logprobs(self, prompts: Sequence[str], prefix: str | None = None) -> torch.Tensor:
        """(B, K) log p(label word | prompt), one left-padded batch.

        ``prefix``: text every prompt starts with (the instruction and the few-shot examples,
        :func:`prompt_prefix`). Its tokens run through the model once and their keys and values are
        kept; each prompt then computes only its own tokens, reading the prefix from a KV cache. Same
        numbers, far less work. Its token ids must begin every prompt's ids.
        """
        rows = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        P = 0
        if prefix:
            pre = self.tokenizer(prefix, add_special_tokens=False)["input_ids"]
            P = len(pre)
            bad = [i for i, r in enumerate(rows) if r[:P] != pre or len(r) <= P]
            if bad:
                raise ValueError(f"prompt {bad[0]} does not start with the prefix's tokens (or has nothing after "
                                 "it); end the prefix where a token ends, e.g. after 'Question:'")
        B, T = len(rows), max(len(r) for r in rows) - P
        ids = torch.full((B, T), self.pad_id, dtype=torch.long)                # (B, T) left-padded rest of each prompt
        mask = torch.zeros((B, T), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, T - len(r) + P:] = torch.as_tensor(r[P:])
            mask[i, T - len(r) + P:] = 1
        position_ids = P + (mask.cumsum(-1) - 1).clamp(min=0)                  # RoPE positions continue the prefix
        cache = None
        if P:
            keys, values = self._prefix_cache(tuple(rows[0][:P]))
            cache = self.model.new_cache(B, P + T)
            for layer in range(len(keys)):
                cache.keys[layer][:, :, :P] = keys[layer]                      # (1, H_kv, P, Dh) -> every row
                cache.values[layer][:, :, :P] = values[layer]
            cache.advance(P)
            mask = torch.cat([torch.ones((B, P), dtype=torch.long), mask], 1)  # (B, P + T)
        logits = self.model(ids, cache=cache, attention_mask=mask, position_ids=position_ids)[:, -1]   # (B, V)
        return torch.log_softmax(logits.float(), -1)[:, self.label_ids]        # (B, K)

    def predict(self, prompts: Sequence[str], batch_size: int = 32, prefix: str | None = None) -> np.ndarray:
        """Class ids (N,), batches of ``batch_size`` prompts."""
        out = [self.label_logprobs(prompts[s:s + batch_size], prefix).argmax(-1)
               for s in range(0, len(prompts), batch_size)]
        return torch.cat(out).numpy()


def latency_per_example(predict: Callable[[list], object], items: Sequence, batch_size: int,
                        repeats: int = 5, warmup: int = 1) -> float:
    """Median over ``repeats`` of (seconds to run ``predict`` on one batch of ``batch_size`` items) /
    ``batch_size``: the CPU cost of one example at that batch size."""
    if batch_size < 1 or len(items) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} items, got {len(items)}")
    batch = list(items[:batch_size])
    for _ in range(warmup):
        predict(batch)
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        predict(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / batch_size


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pareto_front(rows: Sequence[dict], maximize: str = "accuracy", minimize: str = "latency_b1_ms") -> list[str]:
    """Names of the rows that no other row beats on both criteria (higher ``maximize`` and lower
    ``minimize``, at least as good on both and strictly better on one), in input order."""
    for r in rows:
        if not {"name", maximize, minimize} <= set(r):
            raise ValueError(f"each row needs 'name', {maximize!r} and {minimize!r}; got keys {sorted(r)}")
    front = []
    for r in rows:
        dominated = any(o[maximize] >= r[maximize] and o[minimize] <= r[minimize]
                        and (o[maximize] > r[maximize] or o[minimize] < r[minimize]) for o in rows)
        if not dominated:
            front.append(r["name"])
    return front
