r"""Look inside the attention of a pretrained BERT-style model (e.g. all-MiniLM-L6-v2).

A pretrained encoder computes, in every layer :math:`l` and head :math:`h`, an
attention matrix

.. math::
    A^{(l, h)} = \mathrm{softmax}\!\left(\frac{(X^{(l)} W_Q^{(h)\top} + b_Q^{(h)})
                 (X^{(l)} W_K^{(h)\top} + b_K^{(h)})^\top}{\sqrt{d_h}} + M\right),

where :math:`X^{(l)}` is the layer's input (Hugging Face's ``hidden_states[l]``),
:math:`W_Q, W_K` are the ``query`` / ``key`` weights of the layer's state dict and
:math:`M` hides padding.  This module

* runs a Hugging Face model and returns its tokens, hidden states and attention
  maps as NumPy arrays (:func:`run_model`, :func:`attention_maps`);
* **recomputes** a layer's attention from the hidden states with the course's own
  :func:`~course_lib.attention.numpy_attention.scaled_dot_product_attention`
  (:func:`recompute_attention`), which proves we understand exactly what the
  model does;
* summarises attention maps: entropy per query (:func:`attention_entropy`), mass
  on a given token such as ``[CLS]`` or ``[SEP]`` (:func:`token_mass`) and mass on
  the previous / next token (:func:`offset_mass`), the statistics of
  Clark et al. (2019), "What does BERT look at?";
* weighs each attention weight by the size of what it actually moves,
  :math:`\lVert a_{ij} f_h(x_j) \rVert` (:func:`weighted_value_norms`; the norm-based
  analysis of Kobayashi et al., 2020, "Attention is not only a weight"), a reminder
  that a large weight need not mean a large influence.

The model must be loaded with ``attn_implementation="eager"``: in transformers 5.x
the default ``"sdpa"`` kernel never forms the attention matrix and returns no
``output_attentions``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import numpy_attention as npa
from . import torch_attention as tta
from .checks import as_numpy, check_int


def _check_layer(model, layer) -> int:
    n_layers = model.config.num_hidden_layers
    layer = check_int("layer", layer, minimum=0)
    if layer >= n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1} (the model has {n_layers} layers), got {layer}")
    return layer


def _check_hidden(model, hidden_states) -> np.ndarray:
    x = as_numpy("hidden_states", hidden_states.detach().cpu().numpy()
                 if isinstance(hidden_states, torch.Tensor) else hidden_states)
    D = model.config.hidden_size
    if x.ndim != 3 or x.shape[-1] != D:
        raise ValueError(f"hidden_states must be one layer's input (B, T, D={D}), e.g. "
                         f"ModelRun.hidden_states[layer]; got shape {x.shape}")
    return x.astype(np.float64)


@dataclass
class ModelRun:
    """NumPy copies of one forward pass over a batch of B sentences padded to length T.

    Attributes
    ----------
    tokens : list of list of str
        B token lists of length T each (padding shows as ``[PAD]``).
    attention_mask : ndarray of bool, (B, T)
        True for real tokens, False for padding.
    hidden_states : ndarray of float32, (L + 1, B, T, D)
        ``hidden_states[l]`` is the input of layer l; the last one is the output.
    attentions : ndarray of float32, (L, B, H, T, T)
        The attention weights of every layer and head, rows = queries.
    """

    tokens: list
    attention_mask: np.ndarray
    hidden_states: np.ndarray
    attentions: np.ndarray


def _require_attentions(model) -> None:
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl != "eager":
        raise ValueError(
            f"the model uses attn_implementation={impl!r}, which does not return attention "
            "weights; load it with AutoModel.from_pretrained(path, attn_implementation='eager') "
            "or call model.set_attn_implementation('eager')")


@torch.no_grad()
def run_model(model, tokenizer, sentences) -> ModelRun:
    """Tokenise ``sentences`` (a string or a list), run ``model`` and return NumPy arrays.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A BERT-style encoder loaded with ``attn_implementation="eager"``.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer; sentences of different lengths are padded on the right.
    sentences : str or list of str

    Returns
    -------
    ModelRun
        tokens, attention_mask (B, T), hidden_states (L+1, B, T, D), attentions (L, B, H, T, T).
    """
    _require_attentions(model)
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, (list, tuple)) or not sentences or \
            not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a string or a non-empty list of strings")
    model.eval()
    enc = tokenizer(list(sentences), padding=True, return_tensors="pt")
    enc = {k: v.to(model.device) for k, v in enc.items()}
    out = model(**enc, output_attentions=True, output_hidden_states=True)
    if not out.attentions:
        raise RuntimeError("the model returned no attention weights; load it with "
                           "attn_implementation='eager'")
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in enc["input_ids"].tolist()]
    return ModelRun(
        tokens=tokens,
        attention_mask=enc["attention_mask"].bool().cpu().numpy(),                   # (B, T)
        hidden_states=torch.stack(out.hidden_states).float().cpu().numpy(),          # (L+1, B, T, D)
        attentions=torch.stack(out.attentions).float().cpu().numpy(),                # (L, B, H, T, T)
    )


def attention_maps(model, tokenizer, sentence: str) -> tuple[list[str], np.ndarray]:
    """Tokens and attention weights of one sentence.

    Parameters
    ----------
    model, tokenizer
        As for :func:`run_model`.
    sentence : str

    Returns
    -------
    tokens : list of str
        The T word pieces, including ``[CLS]`` and ``[SEP]``.
    attentions : ndarray of float32, (L, H, T, T)
        ``attentions[l, h, i, j]``: how much query token i attends to key token j
        in layer l, head h; every row sums to 1.
    """
    run = run_model(model, tokenizer, [sentence])
    return run.tokens[0], run.attentions[:, 0]                 # (L, H, T, T)


def self_attention_params(model, layer: int) -> dict[str, np.ndarray]:
    """Query / key / value weights and biases of one layer as float64 NumPy arrays.

    Looks up the state-dict entries ``encoder.layer.{layer}.attention.self.{query,key,value}.
    {weight,bias}`` (a prefix such as ``bert.`` is allowed) and returns them under the keys
    ``query.weight`` (D, D), ``query.bias`` (D,), ... in ``torch.nn.Linear`` layout (out, in).
    """
    suffix = f"encoder.layer.{layer}.attention.self."
    params = {}
    for name, tensor in model.state_dict().items():
        head, sep, rest = name.partition(suffix)
        if sep and (head == "" or head.endswith(".")) and rest.split(".")[0] in ("query", "key", "value"):
            params[rest] = tensor.detach().cpu().double().numpy()
    if len(params) != 6:
        raise KeyError(f"could not find the query/key/value weights and biases of layer {layer} "
                       f"(state-dict entries '*{suffix}query.weight' ...); found {sorted(params)}")
    return params


def _output_weight(model, layer: int) -> np.ndarray:
    """W_O of one layer, ``encoder.layer.{layer}.attention.output.dense.weight`` (D, D)."""
    name = f"encoder.layer.{layer}.attention.output.dense.weight"
    for key, tensor in model.state_dict().items():
        if key == name or key.endswith("." + name):
            return tensor.detach().cpu().double().numpy()
    raise KeyError(f"no state-dict entry '*{name}' for layer {layer}")


def recompute_attention(model, hidden_states, layer: int, attention_mask=None,
                        backend: str = "numpy"):
    r"""Recompute layer ``layer``'s self-attention from its input with our own code.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Source of the weights (only its state dict and config are used).
    hidden_states : array, (B, T, D)
        The layer's input, i.e. ``ModelRun.hidden_states[layer]``.
    layer : int
        Layer index, 0 .. L-1.
    attention_mask : array of bool or 0/1, (B, T), optional
        True / 1 for real tokens; padding keys get zero weight.
    backend : {"numpy", "torch"}
        Use :mod:`~course_lib.attention.numpy_attention` (float64) or
        :mod:`~course_lib.attention.torch_attention` (float64 tensors, CPU).

    Returns
    -------
    context : ndarray, (B, T, D)
        The heads' outputs :math:`A V`, concatenated (before the output projection).
    weights : ndarray, (B, H, T, T)
        The attention weights; they equal Hugging Face's ``output_attentions[layer]``.
    """
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    num_heads = model.config.num_attention_heads
    p = self_attention_params(model, layer)
    x = _check_hidden(model, hidden_states)                               # (B, T, D)
    mask = None
    if attention_mask is not None:
        m = as_numpy("attention_mask", attention_mask.cpu().numpy()
                     if isinstance(attention_mask, torch.Tensor) else attention_mask)
        if m.shape != x.shape[:2]:
            raise ValueError(f"attention_mask must be (B, T) = {x.shape[:2]} like hidden_states, got {m.shape}")
        mask = m.astype(bool)[:, None, None, :]                           # (B, 1, 1, T) keys only
    if backend == "numpy":
        proj = {n: x @ p[f"{n}.weight"].T + p[f"{n}.bias"] for n in ("query", "key", "value")}
        q, k, v = (npa.split_heads(proj[n], num_heads) for n in ("query", "key", "value"))  # (B, H, T, Dh)
        out, weights = npa.scaled_dot_product_attention(q, k, v, mask)   # (B, H, T, Dh), (B, H, T, T)
        return npa.merge_heads(out), weights                              # (B, T, D)
    if backend == "torch":
        xt = torch.from_numpy(x)
        proj = {n: xt @ torch.from_numpy(p[f"{n}.weight"]).T + torch.from_numpy(p[f"{n}.bias"])
                for n in ("query", "key", "value")}
        q, k, v = (tta.split_heads(proj[n], num_heads) for n in ("query", "key", "value"))
        mask_t = None if mask is None else torch.from_numpy(mask)
        out, weights = tta.scaled_dot_product_attention(q, k, v, mask_t)
        return tta.merge_heads(out).numpy(), weights.numpy()
    raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")


def weighted_value_norms(model, hidden_states, weights, layer: int) -> np.ndarray:
    r"""Length of what key j adds to query i's output through head h: :math:`\lVert a_{ij} f_h(x_j) \rVert`.

    The attention sub-layer's output (before its bias) is
    :math:`\sum_h \sum_j a^{(h)}_{ij} f_h(x_j)` with
    :math:`f_h(x) = (x W_V^{(h)\top} + b_V^{(h)})\, W_O^{(h)\top}`, where :math:`W_O^{(h)}` are the
    columns of the output projection that read head h.  A large weight on a key whose
    vector :math:`f_h(x_j)` is tiny moves almost nothing.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    hidden_states : array, (B, T, D)
        The layer's input.
    weights : array, (B, H, T, T)
        The layer's attention weights.
    layer : int

    Returns
    -------
    ndarray, (B, H, T, T)
        Entry [b, h, i, j] is :math:`\lVert a^{(h)}_{ij} f_h(x_j) \rVert_2`.
    """
    H = model.config.num_attention_heads
    p = self_attention_params(model, layer)
    w_o = _output_weight(model, layer)                                       # (D, D) = (out, in)
    x = _check_hidden(model, hidden_states)                                 # (B, T, D)
    weights = as_numpy("weights", weights)
    if weights.shape != (x.shape[0], H, x.shape[1], x.shape[1]):
        raise ValueError(f"weights must be (B, H, T, T) = {(x.shape[0], H, x.shape[1], x.shape[1])} for "
                         f"hidden_states {x.shape}, got {weights.shape}")
    v = npa.split_heads(x @ p["value.weight"].T + p["value.bias"], H)       # (B, H, T, Dh)
    Dh = v.shape[-1]
    w_o_heads = w_o.reshape(w_o.shape[0], H, Dh).transpose(1, 2, 0)         # (H, Dh, D)
    f = np.einsum("bhtd,hde->bhte", v, w_o_heads)                          # (B, H, T, D)
    f_norm = np.linalg.norm(f, axis=-1)                                     # (B, H, T)
    return np.asarray(weights, dtype=np.float64) * f_norm[:, :, None, :]    # (B, H, T_q, T_k)


# ----------------------------------------------------------------------------- statistics

def attention_entropy(weights) -> np.ndarray:
    r"""Entropy :math:`-\sum_j a_{ij} \log a_{ij}` (nats) of every attention row.

    Parameters
    ----------
    weights : array, (..., T_q, T_k)
        Rows are probability distributions (0 log 0 is taken as 0).

    Returns
    -------
    ndarray, (..., T_q)
        0 for a row that puts all its mass on one key; :math:`\log T_k` for a uniform row.
    """
    w = as_numpy("weights", weights).astype(np.float64)
    if w.ndim < 2:
        raise ValueError(f"weights must be attention rows (..., T_q, T_k), got shape {w.shape}")
    logs = np.log(np.where(w > 0, w, 1.0))                      # log 1 = 0 where w == 0
    return -(w * logs).sum(axis=-1)


def token_mass(attentions, tokens, target: str) -> np.ndarray:
    """Average fraction of attention that goes to the key token(s) equal to ``target``.

    Parameters
    ----------
    attentions : array, (..., T, T)
        E.g. (L, H, T, T) from :func:`attention_maps`.
    tokens : list of str
        The T tokens.
    target : str
        E.g. ``"[CLS]"``, ``"[SEP]"`` or ``"."``.

    Returns
    -------
    ndarray, (...)
        For each layer/head: the attention mass on ``target`` summed over its
        occurrences, averaged over all T queries.
    """
    a = as_numpy("attentions", attentions)
    if a.ndim < 2 or isinstance(tokens, str) or len(tokens) != a.shape[-1]:
        raise ValueError(f"tokens must list the {a.shape[-1] if a.ndim else '?'} key tokens of attentions "
                         f"{a.shape}, got {len(tokens)} tokens")
    hits = np.array([t == target for t in tokens])              # (T,)
    if not hits.any():
        raise ValueError(f"token {target!r} does not occur in {tokens}")
    return a[..., hits].sum(axis=-1).mean(axis=-1)


def offset_mass(attentions, offset: int) -> np.ndarray:
    """Average attention from token i to token i + offset (-1: previous token, +1: next).

    Parameters
    ----------
    attentions : array, (..., T, T)
    offset : int
        Non-zero; queries without a token at i + offset are left out of the average.

    Returns
    -------
    ndarray, (...)
        Mean over the valid queries i of ``attentions[..., i, i + offset]``.
    """
    a = as_numpy("attentions", attentions)
    check_int("offset", offset)
    if a.ndim < 2:
        raise ValueError(f"attentions must be (..., T, T), got shape {a.shape}")
    T = a.shape[-1]
    if offset == 0 or abs(offset) >= T:
        raise ValueError(f"offset must be non-zero and |offset| < T={T}, got {offset}")
    return np.diagonal(a, offset=offset, axis1=-2, axis2=-1).mean(axis=-1)
