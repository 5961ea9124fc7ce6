r"""Pruning: unstructured magnitude pruning from scratch, and structured removal of FFN channels.

**Magnitude pruning** (Han et al., 2015) zeroes the fraction ``amount`` of weights with the
smallest :math:`|w|`: a binary mask :math:`M` with :math:`W' = M \odot W`. Per layer, the
threshold is the k-th smallest :math:`|w|` of that layer, :math:`k = \mathrm{round}(\text{amount}
\cdot n)`; *global* pruning ranks all layers' weights together, so layers with many small weights
lose more. ``torch.nn.utils.prune.l1_unstructured`` / ``global_unstructured`` compute the same masks
(tested), and ``prune.custom_from_mask`` keeps a mask applied while the model is fine-tuned.

What it reduces: the number of *non-zero* weights. A dense tensor with zeros has the same shape,
the same bytes and the same FLOPs in a dense matmul; only a sparse storage format (indices plus
values: smaller only above ~50-70 % sparsity) or sparse kernels turn zeros into savings.

**Structured pruning** removes whole FFN channels: channel :math:`j` of
:math:`\mathrm{FFN}(x) = W_2\,\phi(W_1 x + b_1) + b_2` is row :math:`j` of :math:`W_1` (and :math:`b_{1,j}`)
and column :math:`j` of :math:`W_2`. Dropping it shrinks both matrices, so parameters, bytes and
FLOPs all fall by the same fraction of the FFN. Channels are ranked by
:math:`\|W_{1,j\cdot}\|_2 \cdot \|W_{2,\cdot j}\|_2`.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from ..transformer.bert import BertModel
from ..transformer.gpt import GPT2LMHeadModel


def _check_amount(amount) -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1] (the share of weights to remove), got {amount!r}")
    return float(amount)


def magnitude_mask(weight: torch.Tensor, amount: float) -> torch.Tensor:
    """Mask (same shape, float 0/1) that removes the ``round(amount * n)`` smallest-magnitude entries."""
    amount = _check_amount(amount)
    k = round(amount * weight.numel())                                       # how many to remove
    mask = torch.ones_like(weight, dtype=torch.float32)
    if k > 0:
        smallest = torch.topk(weight.detach().abs().reshape(-1), k, largest=False).indices
        mask.view(-1)[smallest] = 0.0                                        # M_ij = 0 for the k smallest |w|
    return mask


def prunable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers inside the Transformer blocks (embeddings, heads and poolers are left alone)."""
    if isinstance(model, GPT2LMHeadModel):
        root = model.transformer.h
    elif isinstance(model, BertModel):
        root = model.encoder.layer
    elif hasattr(model, "bert") and isinstance(model.bert, BertModel):
        root = model.bert.encoder.layer
    else:
        raise TypeError(f"prunable_linears knows our GPT2LMHeadModel, BertModel and BERT classifiers, "
                        f"got {type(model).__name__}")
    return {f"{i}.{n}": m for i, block in enumerate(root) for n, m in block.named_modules() if isinstance(m, nn.Linear)}


def magnitude_masks(model: nn.Module, amount: float, scope: str = "layer") -> dict[str, torch.Tensor]:
    """Masks for every prunable linear weight: ``scope="layer"`` (each layer loses ``amount``) or ``"global"``."""
    layers = prunable_linears(model)
    if scope == "layer":
        return {name: magnitude_mask(m.weight, amount) for name, m in layers.items()}
    if scope != "global":
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    flat = torch.cat([m.weight.detach().reshape(-1) for m in layers.values()])
    mask = magnitude_mask(flat, amount)                                   # one threshold for all layers
    out, start = {}, 0
    for name, m in layers.items():
        n = m.weight.numel()
        out[name] = mask[start:start + n].view_as(m.weight)
        start += n
    return out


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], keep_during_training: bool = False) -> nn.Module:
    """Zero the masked weights in place; ``keep_during_training`` re-applies each mask on every forward.

    The second option uses ``prune.custom_from_mask`` (the weight becomes
    ``weight_orig * weight_mask``, so masked entries get zero gradient and stay zero while fine-tuning);
    call :func:`make_permanent` afterwards.
    """
    layers = prunable_linears(model)
    unknown = set(masks) - set(layers)
    if unknown:
        raise KeyError(f"masks name layers the model does not have: {sorted(unknown)[:3]}; "
                       "build them with magnitude_masks(model, ...)")
    for name, mask in masks.items():
        if keep_during_training:
            prune.custom_from_mask(layers[name], "weight", mask.to(layers[name].weight.device))
        else:
            layers[name].weight.mul_(mask.to(layers[name].weight))          # W' = M ⊙ W
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Remove ``torch.nn.utils.prune``'s re-parametrisation, leaving plain zeroed weights."""
    for m in prunable_linears(model).values():
        if prune.is_pruned(m):
            prune.remove(m, "weight")
    return model


def sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the prunable linear weights."""
    ws = [m.weight for m in prunable_linears(model).values()]
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws))


def _ffn_pairs(model: nn.Module) -> list[tuple[nn.Module, str, str]]:
    if isinstance(model, GPT2LMHeadModel):
        return [(b.mlp, "c_fc", "c_proj") for b in model.transformer.h]
    bert = model if isinstance(model, BertModel) else getattr(model, "bert", None)
    if isinstance(bert, BertModel):
        return [(layer, "intermediate.dense", "output.dense") for layer in bert.encoder.layer]
    raise TypeError(f"prune_ffn_channels knows our GPT2LMHeadModel, BertModel and BERT classifiers, "
                    f"got {type(model).__name__}")


def ffn_channel_scores(fc_in: nn.Linear, fc_out: nn.Linear) -> torch.Tensor:
    """Importance of each hidden channel j: ``||W1[j, :]|| * ||W2[:, j]||``, shape (F,)."""
    return fc_in.weight.detach().norm(dim=1) * fc_out.weight.detach().norm(dim=0)


@torch.no_grad()
def prune_ffn_channels(model: nn.Module, amount: float) -> nn.Module:
    """Remove the ``round(amount * F)`` least important FFN channels of every block, in place.

    The two linear layers are replaced by smaller ones (F -> F - k hidden units); the rest of the
    model is untouched, so a channel whose weights were already zero is removed without changing
    any output (tested).
    """
    amount = _check_amount(amount)
    for parent, name_in, name_out in _ffn_pairs(model):
        fc_in, fc_out = parent.get_submodule(name_in), parent.get_submodule(name_out)
        F_ = fc_in.out_features
        keep_n = F_ - round(amount * F_)
        if keep_n < 1:
            raise ValueError(f"amount={amount} would remove all {F_} FFN channels; keep at least one")
        keep = torch.topk(ffn_channel_scores(fc_in, fc_out), keep_n).indices.sort().values   # (F',)
        new_in = nn.Linear(fc_in.in_features, keep_n, bias=fc_in.bias is not None).to(fc_in.weight)
        new_in.weight.copy_(fc_in.weight[keep])                                 # rows j of W1
        if fc_in.bias is not None:
            new_in.bias.copy_(fc_in.bias[keep])
        new_out = nn.Linear(keep_n, fc_out.out_features, bias=fc_out.bias is not None).to(fc_out.weight)
        new_out.weight.copy_(fc_out.weight[:, keep])                            # columns j of W2
        if fc_out.bias is not None:
            new_out.bias.copy_(fc_out.bias)
        for name, module in ((name_in, new_in), (name_out, new_out)):
            owner, _, attr = name.rpartition(".")
            setattr(parent.get_submodule(owner) if owner else parent, attr, module)
    return model
