"""Port weights from a Hugging Face checkpoint into our models: a loop, plus a short list.

Our parameter names mirror Hugging Face's (``encoder.layer.0.attention.self.query.weight``,
``transformer.h.0.attn.c_attn.weight``, ...), so loading is one loop over names. Three
exceptions are declared by each model class rather than hidden in a 60-line mapping:

``hf_transposed``
    name suffixes whose tensors are stored transposed by Hugging Face. GPT-2 uses a ``Conv1D``
    layer whose weight is (in, out); our ``nn.Linear`` stores (out, in), so we copy ``W.T``.
``hf_ignored``
    name suffixes of Hugging Face buffers that are not parameters (``embeddings.position_ids``
    in old BERT checkpoints, ``attn.bias`` causal masks in old GPT-2 checkpoints).
``hf_tied``
    our names that share storage with another parameter (GPT-2's ``lm_head.weight`` *is*
    ``transformer.wte.weight``) and may therefore be absent from a checkpoint.

Anything else that does not line up raises a ``ValueError`` that names every missing,
unexpected and mis-shaped tensor.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

_SHOW = 8  # names listed per problem in an error message


def _ends(name: str, suffixes) -> bool:
    return any(name == s or name.endswith("." + s) for s in suffixes)


def _listing(title: str, items: list[str]) -> str:
    more = f" ... and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"{len(items)} {title}: " + ", ".join(items[:_SHOW]) + more


def load_hf_state_dict(model: nn.Module, hf_state_dict: Mapping[str, torch.Tensor],
                       strip_prefix: str = "") -> nn.Module:
    """Copy a Hugging Face state dict into ``model`` (in place) and return the model.

    Parameters
    ----------
    model : nn.Module
        One of our models (e.g. :class:`~course_lib.transformer.bert.BertModel`); its class
        attributes ``hf_transposed``, ``hf_ignored`` and ``hf_tied`` (tuples of name suffixes /
        names) describe the exceptions to a one-to-one copy.
    hf_state_dict : mapping name -> tensor
        E.g. ``hf_model.state_dict()`` or ``safetensors.torch.load_file(path)``.
    strip_prefix : str
        Removed from the start of every checkpoint name first (e.g. ``"bert."`` for a
        ``BertForSequenceClassification`` checkpoint loaded into our ``BertModel``).

    Raises
    ------
    ValueError
        Naming the missing tensors (in ``model``, absent from the checkpoint), the unexpected ones
        (in the checkpoint, unknown to ``model``) and those whose shapes differ.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be one of our nn.Module models, got {type(model).__name__}")
    if not isinstance(hf_state_dict, Mapping):
        raise TypeError(f"hf_state_dict must be a mapping name -> tensor such as hf_model.state_dict() or "
                        f"safetensors.torch.load_file(path), got {type(hf_state_dict).__name__}")
    if not isinstance(strip_prefix, str):
        raise TypeError(f"strip_prefix must be a str such as 'bert.', got {type(strip_prefix).__name__}")
    not_tensors = [n for n, t in hf_state_dict.items() if not isinstance(t, torch.Tensor)]
    if not_tensors:
        raise TypeError(f"hf_state_dict must map names to tensors; not tensors: {not_tensors[:_SHOW]}")
    transposed = getattr(model, "hf_transposed", ())
    ignored = getattr(model, "hf_ignored", ())
    tied = set(getattr(model, "hf_tied", ()))
    hf = {}
    for name, tensor in hf_state_dict.items():
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix):]
        if not _ends(name, ignored):
            hf[name] = tensor
    ours = model.state_dict()
    missing = [n for n in ours if n not in hf and n not in tied]
    unexpected = [n for n in hf if n not in ours]
    misshaped = []
    for name in ours.keys() & hf.keys():
        got = tuple(hf[name].shape)
        got = got[::-1] if _ends(name, transposed) else got
        if got != tuple(ours[name].shape):
            note = " (after transposing)" if _ends(name, transposed) else ""
            misshaped.append(f"{name} expected {tuple(ours[name].shape)} got {got}{note}")
    if missing or unexpected or misshaped:
        problems = [_listing(title, sorted(items)) for title, items in
                    (("missing tensors", missing), ("unexpected tensors", unexpected),
                     ("mis-shaped tensors", misshaped)) if items]
        raise ValueError(f"cannot load the state dict into {type(model).__name__}: " + "; ".join(problems)
                         + ". Check that the config matches the checkpoint (sizes, number of layers) "
                         "and pass strip_prefix= if the names carry a prefix such as 'bert.'")
    with torch.no_grad():
        for name, tensor in hf.items():
            tensor = tensor.t() if _ends(name, transposed) else tensor
            ours[name].copy_(tensor)          # state_dict tensors share storage with the parameters
    return model
