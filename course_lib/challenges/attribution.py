r"""Gradient attributions for a MiniLM sentiment classifier: gradient x input and integrated gradients.

The model explained is :class:`MiniLMProbe`: the frozen MiniLM encoder, a mean over the real
tokens, and one linear layer (trained in seconds on Rotten Tomatoes; the shipped head lives in
``checkpoints/interpret``). Attributions are taken with respect to the **word embeddings**
:math:`e_t \in \mathbb{R}^D` of the tokens (position and segment embeddings are added inside).

Gradient x input (Shrikumar et al., 2016; Captum's ``InputXGradient``) scores token :math:`t` by

.. math::  a_t = \sum_{d} e_{t,d}\, \frac{\partial f}{\partial e_{t,d}}(e) ,

a first-order Taylor term. Integrated gradients (Sundararajan et al., 2017) average the gradient
along the straight path from a baseline :math:`e'` (here the ``[PAD]`` embedding at every word
position) to the input:

.. math::  \mathrm{IG}_{t,d} = (e_{t,d} - e'_{t,d}) \int_0^1
           \frac{\partial f}{\partial e_{t,d}}\big(e' + \alpha (e - e')\big)\, d\alpha
           \approx (e - e')_{t,d} \sum_{k=1}^{m} w_k\, \frac{\partial f}{\partial e_{t,d}}(e' + \alpha_k (e - e')) ,

and satisfy **completeness**, :math:`\sum_{t,d} \mathrm{IG}_{t,d} = f(e) - f(e')`, up to the error
of the quadrature rule :math:`(\alpha_k, w_k)`. :func:`quadrature` gives Captum's rules exactly:
the Riemann sums (left, right, middle, trapezoid) and Gauss-Legendre (Captum's default).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.bert import BertModel
from ..transformer.layers import masked_mean

__all__ = ["METHODS", "quadrature", "integrated_gradients", "gradient_x_input", "MiniLMProbe", "ProbeConfig",
           "encode", "token_attributions", "word_scores", "load_probe", "PROBE_DIR"]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
PROBE_DIR = Path(__file__).resolve().parents[2] / "checkpoints" / "interpret"


def quadrature(n_steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes :math:`\alpha_k \in [0, 1]` and weights :math:`w_k` for :math:`\int_0^1 g(\alpha)\,d\alpha`.

    The same numbers as Captum's ``approximation_parameters(method)``: Riemann rules use step
    :math:`1/m` (the trapezoid halves the two end weights); Gauss-Legendre maps the nodes
    :math:`x_k` and weights :math:`v_k` on :math:`[-1, 1]` to :math:`\alpha = (1 + x)/2`, :math:`w = v/2`.

    Captum's ``"riemann_trapezoid"`` puts its n nodes at spacing :math:`1/(n-1)` but uses the step
    :math:`1/n` (halved at both ends), so its weights sum to :math:`1 - 1/n`, not 1: the rule is
    off by a factor :math:`(n-1)/n` and its completeness error falls like :math:`1/n`, not
    :math:`1/n^2`. We reproduce it, for parity; the other rules integrate a constant exactly.

    Returns
    -------
    alphas, weights : float64 arrays of shape (n_steps,)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(n_steps, (int, np.integer)) or isinstance(n_steps, bool) or n_steps < 2:
        raise ValueError(f"n_steps must be an int >= 2 (Captum's rules need two points), got {n_steps!r}")
    n = int(n_steps)
    if method == "gausslegendre":
        x, v = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1 + x), 0.5 * v                                  # alpha = (1 + x)/2, w = v/2
    w = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        w[0] /= 2
        w[-1] /= 2
        # Captum builds these nodes with float32 torch.linspace; keep its exact values
        return np.asarray(torch.linspace(0, 1, n).tolist()), w
    start, stop = {"riemann_left": (0.0, 1 - 1 / n), "riemann_right": (1 / n, 1.0),
                   "riemann_middle": (1 / (2 * n), 1 - 1 / (2 * n))}[method]
    return np.asarray(torch.linspace(start, stop, n).tolist()), w


def _select(out: torch.Tensor, target: int | None) -> torch.Tensor:
    if out.dim() == 1:
        return out
    if target is None:
        raise ValueError(f"the forward function returns shape {tuple(out.shape)}: pass target=<class index>")
    return out[:, target]                                                # (B,)


def _check_pair(inputs: torch.Tensor, baselines: torch.Tensor) -> None:
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise TypeError(f"inputs must be a floating-point tensor (e.g. word embeddings), got {type(inputs).__name__}")
    if not isinstance(baselines, torch.Tensor) or baselines.shape != inputs.shape:
        got = tuple(baselines.shape) if isinstance(baselines, torch.Tensor) else type(baselines).__name__
        raise ValueError(f"baselines must be a tensor with the inputs' shape {tuple(inputs.shape)}, got {got}")


def gradient_x_input(forward_fn: Callable, inputs: torch.Tensor, target: int | None = None,
                     additional_forward_args: tuple = ()) -> torch.Tensor:
    r"""Captum's ``InputXGradient``: :math:`x \odot \nabla_x f(x)`, same shape as ``inputs``."""
    _check_pair(inputs, inputs)
    x = inputs.detach().clone().requires_grad_(True)
    out = _select(forward_fn(x, *additional_forward_args), target)
    (grad,) = torch.autograd.grad(out.sum(), x)                          # sum over the batch: per-row gradients
    return (x * grad).detach()                                           # x * df/dx


def integrated_gradients(forward_fn: Callable, inputs: torch.Tensor, baselines: torch.Tensor,
                         target: int | None = None, n_steps: int = 50, method: str = "gausslegendre",
                         additional_forward_args: tuple = (), internal_batch_size: int | None = None,
                         return_convergence_delta: bool = False):
    r"""Integrated gradients of ``forward_fn`` at ``inputs`` (B, ...) from ``baselines`` (B, ...).

    Mirrors ``captum.attr.IntegratedGradients(forward_fn).attribute(inputs, baselines, target=...,
    n_steps=..., method=..., additional_forward_args=...)``. ``additional_forward_args`` are repeated
    for every path point, as Captum does.

    Returns
    -------
    attributions : Tensor, shape of ``inputs``
    delta : Tensor (B,), only with ``return_convergence_delta``:
        :math:`\sum \mathrm{IG} - (f(x) - f(x'))`, the completeness error.
    """
    _check_pair(inputs, baselines)
    alphas, weights = quadrature(n_steps, method)
    B = inputs.shape[0]
    diff = (inputs - baselines).detach()                                  # x - x'
    total = torch.zeros_like(inputs)
    chunk = len(alphas) if internal_batch_size is None else max(1, internal_batch_size // max(B, 1))
    for s in range(0, len(alphas), chunk):
        a = torch.tensor(alphas[s:s + chunk], dtype=inputs.dtype, device=inputs.device)    # (S,)
        w = torch.tensor(weights[s:s + chunk], dtype=inputs.dtype, device=inputs.device)   # (S,)
        shape = (-1,) + (1,) * inputs.dim()                                            # (S, 1, 1, ...)
        path = baselines[None] + a.view(shape) * diff[None]                            # x' + a (x - x'), (S, B, ...)
        path = path.reshape(-1, *inputs.shape[1:])                                     # (S*B, ...), step-major
        path.requires_grad_(True)
        extra = tuple(t.repeat(len(a), *([1] * (t.dim() - 1))) if isinstance(t, torch.Tensor) else t
                      for t in additional_forward_args)
        out = _select(forward_fn(path, *extra), target)
        (grad,) = torch.autograd.grad(out.sum(), path)                                 # (S*B, ...)
        total += (w.view(shape) * grad.view(len(a), *inputs.shape)).sum(0)            # sum_k w_k grad_k
    attributions = (diff * total).detach()                                             # (x - x') * integral
    if not return_convergence_delta:
        return attributions
    with torch.no_grad():
        fx = _select(forward_fn(inputs, *additional_forward_args), target)
        fb = _select(forward_fn(baselines, *additional_forward_args), target)
    delta = attributions.reshape(B, -1).sum(1) - (fx - fb)                            # completeness error
    return attributions, delta


@dataclass
class ProbeConfig:
    """The linear head on mean-pooled MiniLM features."""
    hidden_size: int = 384
    num_labels: int = 2
    label_names: tuple = ("negative", "positive")


class MiniLMProbe(nn.Module):
    r"""Frozen MiniLM + mean pooling + ``Linear(D, K)``: :math:`z = W \bar h + b`, :math:`\bar h =
    \sum_t m_t h_t / \sum_t m_t`. :meth:`forward_embeds` starts from the word embeddings, so that
    attributions can be taken with respect to them."""

    def __init__(self, encoder: BertModel, config: ProbeConfig | None = None):
        super().__init__()
        self.config = config or ProbeConfig(hidden_size=encoder.config.hidden_size)
        self.bert = encoder.eval()
        for p in self.bert.parameters():
            p.requires_grad_(False)
        self.classifier = nn.Linear(self.config.hidden_size, self.config.num_labels)

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def forward_embeds(self, word_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) from word embeddings (B, T, D); position and segment embeddings are added here."""
        emb = self.bert.embeddings
        B, T, _ = word_embeds.shape
        pos = torch.arange(T, device=word_embeds.device)[None]                        # (1, T)
        h = word_embeds + emb.token_type_embeddings(torch.zeros_like(pos)) + emb.position_embeddings(pos)
        h = emb.dropout(emb.LayerNorm(h))                                             # (B, T, D)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]   # (B, 1, 1, T)
        for layer in self.bert.encoder.layer:
            h, _ = layer(h, mask)
        m = torch.ones(B, T, device=h.device) if attention_mask is None else attention_mask
        pooled = masked_mean(h, m)                                                     # mean over real tokens, (B, D)
        return self.classifier(pooled)                                                 # z = W h_bar + b, (B, K)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) from token ids (B, T)."""
        return self.forward_embeds(self.word_embeddings(input_ids), attention_mask)

    def prob_embeds(self, word_embeds, attention_mask=None) -> torch.Tensor:
        """Class probabilities (B, K): the function the attributions explain."""
        return F.softmax(self.forward_embeds(word_embeds, attention_mask), -1)

    def prob(self, input_ids, attention_mask=None) -> torch.Tensor:
        return F.softmax(self.forward(input_ids, attention_mask), -1)


def _tokenizer():
    from transformers import AutoTokenizer
    from .. import data
    return AutoTokenizer.from_pretrained(str(data.minilm_path()))


def load_probe(path: str | Path | None = None, verify: bool = True):
    """The MiniLM probe with the shipped head (``checkpoints/interpret``) and MiniLM's tokenizer.

    Returns ``(model, tokenizer)``; the model is in eval mode. ``verify`` checks the SHA-256 sums.
    """
    from safetensors.torch import load_file
    from .. import data
    from ..transformer.checkpoint import verify_checkpoint
    path = Path(PROBE_DIR if path is None else path)
    if not (path / "head.safetensors").exists():
        raise FileNotFoundError(f"{path} has no head.safetensors; train it with "
                                "`python tools/train_interpret_head.py` (see checkpoints/interpret/README.md)")
    if verify:
        verify_checkpoint(path)
    cfg = json.loads((path / "config.json").read_text())
    model = MiniLMProbe(BertModel.from_pretrained(data.minilm_path()),
                        ProbeConfig(cfg["hidden_size"], cfg["num_labels"], tuple(cfg["label_names"])))
    model.classifier.load_state_dict(load_file(str(path / "head.safetensors")))
    return model.eval(), _tokenizer()


def encode(tokenizer, text: str, max_length: int = 64) -> dict:
    """Token ids (1, T), the [PAD] baseline ids (1, T) ([CLS]/[SEP] kept), tokens and word ids."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    enc = tokenizer(text, truncation=True, max_length=max_length)
    ids = torch.tensor([enc["input_ids"]])                                           # (1, T)
    special = torch.tensor([[t in tokenizer.all_special_ids for t in enc["input_ids"]]])
    baseline = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))
    return {"input_ids": ids, "baseline_ids": baseline, "tokens": tokenizer.convert_ids_to_tokens(enc["input_ids"]),
            "word_ids": enc.word_ids()}


def token_attributions(model: MiniLMProbe, enc: dict, method: str = "ig", target: int = 1, n_steps: int = 50,
                       ig_method: str = "gausslegendre") -> np.ndarray:
    """Per-token scores (T,): the attribution summed over the embedding axis.

    ``method``: ``"ig"`` (integrated gradients from the [PAD] baseline), ``"grad_x_input"``, or
    ``"saliency"`` (the gradient's L2 norm per token, unsigned).
    """
    if method not in ("ig", "grad_x_input", "saliency"):
        raise ValueError(f"method must be 'ig', 'grad_x_input' or 'saliency', got {method!r}")
    x = model.word_embeddings(enc["input_ids"]).detach()                             # (1, T, D)
    if method == "ig":
        base = model.word_embeddings(enc["baseline_ids"]).detach()
        a = integrated_gradients(model.prob_embeds, x, base, target=target, n_steps=n_steps, method=ig_method)
    elif method == "grad_x_input":
        a = gradient_x_input(model.prob_embeds, x, target=target)
    else:
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model.prob_embeds(xg)[:, target].sum(), xg)
        return g[0].norm(dim=-1).numpy()                                             # ||df/de_t||
    return a[0].sum(-1).numpy()                                                      # sum over D, (T,)


def word_scores(token_scores: Sequence[float], word_ids: Sequence[int | None]) -> np.ndarray:
    """Sum token scores into words (``word_ids`` from a fast tokenizer; None = special token, dropped)."""
    if len(token_scores) != len(word_ids):
        raise ValueError(f"token_scores has {len(token_scores)} entries but word_ids {len(word_ids)}; "
                         "use the word_ids of the same encoding")
    n = max((w for w in word_ids if w is not None), default=-1) + 1
    out = np.zeros(n)
    for s, w in zip(token_scores, word_ids):
        if w is not None:
            out[w] += s
    return out
