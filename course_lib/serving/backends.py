r"""The models behind the endpoints, each with a ``*_batch(items) -> results`` method for the batcher.

* :class:`SentenceEncoder` — MiniLM sentence embeddings as sentence-transformers computes them for
  ``all-MiniLM-L6-v2`` (its ``modules.json``: Transformer, mean Pooling, Normalize):

  .. math:: e = \frac{\sum_t m_t h_t}{\max(\sum_t m_t, 10^{-9})},\qquad \hat e = e / \lVert e \rVert_2 ,

  the mean of the last hidden states over real tokens (mask :math:`m`), scaled to unit length.
* :class:`Completer` — greedy decoding with our :class:`~course_lib.transformer.llama.LlamaForCausalLM`
  and its KV cache, for a *batch* of prompts of different lengths (left-padded, positions
  :math:`p_t = \sum_{s\le t} m_s - 1` as chapter 4's :func:`~course_lib.transformer.decoding.generate`),
  calling back after every token so the server can stream it; each row stops at its own
  ``max_tokens``, at the end-of-sequence token, or when its client has gone.
* :class:`QuestionClassifier` — TREC-6 question types from a linear softmax head trained at
  start-up on a few hundred MiniLM embeddings (the encoder frozen: feature extraction).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from ..transformer.bert import BertModel

__all__ = ["SentenceEncoder", "CompletionJob", "CompletionResult", "Completer", "QuestionClassifier"]


class SentenceEncoder:
    """MiniLM sentence embeddings: our :class:`~course_lib.transformer.bert.BertModel`, mean pooling, L2 norm.

    Pooling, normalisation and the maximum length are read from the sentence-transformers files of
    the model folder (``1_Pooling/config.json``, ``modules.json``, ``sentence_bert_config.json``).
    """

    def __init__(self, path: str | Path | None = None, name: str = "all-MiniLM-L6-v2"):
        from transformers import AutoTokenizer
        path = Path(data.minilm_path() if path is None else path)
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{path} does not use mean pooling ({pooling}); SentenceEncoder implements mean pooling only")
        modules = json.loads((path / "modules.json").read_text())
        self.normalize = any(m["type"].endswith("Normalize") for m in modules)
        self.model = BertModel.from_pretrained(path).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.max_length = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.dim, self.name = self.model.config.hidden_size, name

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces of each text, [CLS] and [SEP] included (the limit is ``max_length``)."""
        return [len(ids) for ids in self.tokenizer(texts)["input_ids"]]

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """texts -> embeddings (N, D), unit length when the model's pipeline normalises."""
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            h = self.model(enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state  # (B, T, D)
            m = enc["attention_mask"][..., None].to(h.dtype)                                  # (B, T, 1)
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)              # sum_t m_t h_t / sum_t m_t: (B, D)
            out.append(F.normalize(e, p=2, dim=1) if self.normalize else e)   # e / max(||e||, 1e-12)
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def embed_batch(self, items: list[list[str]]) -> list[torch.Tensor]:
        """The batcher's function: every request's texts in one pass, split back per request."""
        flat = [t for texts in items for t in texts]
        emb = self.encode(flat)
        return list(torch.split(emb, [len(texts) for texts in items]))


@dataclass
class CompletionJob:
    """One prompt to continue; ``on_token(token_id, text_delta)`` is called from the model's thread."""
    prompt_ids: list[int]
    max_tokens: int
    on_token: Callable[[int, str], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)   # set when the client goes away


@dataclass
class CompletionResult:
    token_ids: list[int]          # the new tokens (without the end-of-sequence token)
    text: str
    finish_reason: str            # "stop" (end-of-sequence), "length" (max_tokens) or "cancelled"


class Completer:
    """Batched greedy completion with our Llama and its KV cache.

    Parameters
    ----------
    model : our causal LM (``forward(ids, cache, attention_mask=, position_ids=)``, ``new_cache``)
    tokenizer : its Hugging Face tokenizer
    """

    def __init__(self, model: nn.Module, tokenizer, name: str = "SmolLM2-135M-Instruct",
                 eos_token_id: int | None = None):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.eos_token_id = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (self.eos_token_id or 0)

    @classmethod
    def smollm2(cls) -> "Completer":
        """The offline SmolLM2-135M-Instruct through our Llama code (about 20 s to load)."""
        from ..transformer.llama import load_smollm2
        model, tokenizer = load_smollm2()
        return cls(model, tokenizer)

    @classmethod
    def tiny_random(cls, seed: int = 0, hidden_size: int = 64, num_hidden_layers: int = 2) -> "Completer":
        """A small random Llama with MiniLM's tokenizer (loads in a second): for tests and experiments.

        Weights are ``0.1 * N(0, 1)`` (norm gains ``1 + 0.1 * N(0, 1)``) so that its logits are far
        from ties and greedy decoding is a sharp, reproducible function of the prompt.
        """
        from transformers import AutoTokenizer

        from ..transformer.llama import LlamaConfig, LlamaForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(str(data.minilm_path()))
        cfg = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                          num_hidden_layers=num_hidden_layers, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id)
        model = LlamaForCausalLM(cfg)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_((1.0 if name.endswith("norm.weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
        return cls(model, tokenizer, name="tiny random Llama", eos_token_id=tokenizer.sep_token_id)

    def encode_prompt(self, prompt: str, chat: bool = False) -> list[int]:
        if chat:
            ids = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                     add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            return list(ids)
        return list(self.tokenizer(prompt)["input_ids"])

    def _delta(self, tokens: list[int], sent: int) -> str | None:
        """Text of ``tokens`` after the first ``sent`` characters; None while a character is incomplete."""
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return None if text.endswith("\ufffd") else text[sent:]

    @torch.inference_mode()
    def complete_batch(self, jobs: list[CompletionJob]) -> list[CompletionResult]:
        """Greedy-continue every job's prompt in one left-padded batch (the batcher's function)."""
        B, T = len(jobs), max(len(j.prompt_ids) for j in jobs)
        device = self.model.lm_head.weight.device
        ids = torch.full((B, T), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.long)
        for r, job in enumerate(jobs):                                 # left padding: prompts end together
            ids[r, T - len(job.prompt_ids):] = torch.tensor(job.prompt_ids)
            mask[r, T - len(job.prompt_ids):] = 1
        ids, mask = ids.to(device), mask.to(device)
        padded = bool((mask == 0).any())
        positions = (mask.cumsum(-1) - 1).clamp(min=0)                 # p_t = sum_{s<=t} m_s - 1, pads at 0
        steps = max(j.max_tokens for j in jobs)
        cache = self.model.new_cache(B, T + steps)
        kw = dict(attention_mask=mask, position_ids=positions) if padded else {}
        logits = self.model(ids, cache, **kw)[:, -1]                   # prefill: (B, V) at each last token
        new, sent = [[] for _ in jobs], [0] * B
        finish: list[str | None] = [None] * B
        for _ in range(steps):
            nxt = logits.argmax(dim=-1)                                # greedy: y = argmax_v p(v | y_<t)
            for r, (job, tok) in enumerate(zip(jobs, nxt.tolist())):
                if finish[r]:
                    continue
                if job.cancel.is_set():
                    finish[r] = "cancelled"
                elif tok == self.eos_token_id:
                    finish[r] = "stop"
                else:
                    new[r].append(tok)
                    delta = self._delta(new[r], sent[r]) if job.on_token else None
                    if delta is not None:
                        sent[r] += len(delta)
                        job.on_token(tok, delta)
                    if len(new[r]) == job.max_tokens:
                        finish[r] = "length"
            if all(finish):
                break
            if padded:
                mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)   # the new token is real
                kw = dict(attention_mask=mask, position_ids=kw["position_ids"][:, -1:] + 1)
            logits = self.model(nxt[:, None], cache, **kw)[:, -1]      # one new token per row, (B, V)
        return [CompletionResult(toks, self.tokenizer.decode(toks, skip_special_tokens=True), reason)
                for toks, reason in zip(new, finish)]


class QuestionClassifier:
    """TREC-6 question type: softmax head :math:`p = \\mathrm{softmax}(W \\hat e + b)` over frozen MiniLM embeddings.

    Trained at start-up on ``train_size`` questions drawn (seeded) from the standard TREC training
    set: the embeddings are computed once, then ``steps`` full-batch AdamW steps fit :math:`W, b`.
    """

    def __init__(self, encoder: SentenceEncoder, train_size: int = 300, steps: int = 300, lr: float = 0.05,
                 seed: int = 0):
        from ..finetuning.data import trec_splits
        start = time.perf_counter()
        task = trec_splits(seed, valid_fraction=0.0)
        rows = np.random.default_rng(seed).choice(len(task.train), size=train_size, replace=False)
        texts = task.train["text"].iloc[rows].tolist()
        y = torch.tensor(task.train["label"].iloc[rows].to_numpy())
        self.encoder, self.labels = encoder, list(task.label_names)
        X = encoder.encode(texts).clone()           # (N, D), computed once (clone: out of inference mode)
        torch.manual_seed(seed)
        self.head = nn.Linear(encoder.dim, len(self.labels))
        opt = torch.optim.AdamW(self.head.parameters(), lr=lr, weight_decay=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(self.head(X), y)                     # -log softmax(W e + b)_y
            loss.backward()
            opt.step()
        with torch.no_grad():
            self.train_accuracy = float((self.head(X).argmax(-1) == y).float().mean())
        self.train_size, self.train_seconds = train_size, time.perf_counter() - start
        self.name = f"{encoder.name} + TREC-6 head"

    def describe(self) -> dict:
        return {"name": self.name, "labels": self.labels, "method": "linear head on frozen MiniLM embeddings, "
                "trained at start-up", "train_size": self.train_size,
                "train_accuracy": round(self.train_accuracy, 4), "train_seconds": round(self.train_seconds, 2)}

    @torch.no_grad()
    def classify_batch(self, items: list[list[str]]) -> list[torch.Tensor]:
        """The batcher's function: probabilities (n_texts, K) for every request."""
        probs = self.head(self.encoder.encode([t for texts in items for t in texts])).softmax(-1)   # (N, K)
        return list(torch.split(probs, [len(texts) for texts in items]))
