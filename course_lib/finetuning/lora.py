r"""LoRA, low-rank adaptation (Hu et al., 2022), from scratch: the same layer as ``peft``'s.

Full fine-tuning updates every weight matrix :math:`W \in \mathbb{R}^{d_{out} \times d_{in}}`.
LoRA freezes :math:`W` and learns the update as a product of two thin matrices,

.. math::
    h = W x + \frac{\alpha}{r}\, B A\, x, \qquad A \in \mathbb{R}^{r \times d_{in}},\;
    B \in \mathbb{R}^{d_{out} \times r},\; r \ll \min(d_{in}, d_{out}),

so a layer trains :math:`r (d_{in} + d_{out})` numbers instead of :math:`d_{in} d_{out}`.
As in ``peft``, :math:`A` starts Kaiming-uniform and :math:`B` starts at zero, so the adapted
model is *exactly* the pretrained one at step 0; dropout is applied to the LoRA branch's input
only; the scale :math:`\alpha / r` keeps the update's size comparable when ``r`` changes.

After training, :math:`W' = W + \frac{\alpha}{r} B A` can be **merged** into the frozen weight:
the merged layer is a plain ``nn.Linear`` with no extra inference cost.

Names mirror ``peft`` (``LoraConfig(r, lora_alpha, lora_dropout, target_modules,
modules_to_save)``; a wrapped layer holds ``base_layer``, ``lora_A``, ``lora_B``), so weights
copy over by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["LoraConfig", "LoraLinear", "apply_lora", "lora_layers", "merge_lora", "unmerge_lora",
           "merge_and_unload", "parameter_counts", "linear_module_names", "training_memory"]


@dataclass
class LoraConfig:
    """LoRA hyper-parameters, named as in ``peft.LoraConfig``.

    Parameters
    ----------
    r : int
        Rank of the update :math:`BA` (> 0).
    lora_alpha : float
        Scale numerator: the update is multiplied by ``lora_alpha / r`` (> 0).
    lora_dropout : float
        Dropout probability on the LoRA branch's input, in [0, 1).
    target_modules : tuple of str
        ``nn.Linear`` modules to adapt, matched like ``peft``: a module whose full name equals an entry
        or ends with ``"." + entry`` (``"query"`` matches every ``...attention.self.query``).
    modules_to_save : tuple of str
        Modules trained in full next to the adapters (the new task head, e.g. ``"classifier"``).
    """
    r: int = 8
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("query", "value")
    modules_to_save: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if isinstance(self.target_modules, str):
            self.target_modules = (self.target_modules,)
        if isinstance(self.modules_to_save, str):
            self.modules_to_save = (self.modules_to_save,)
        self.target_modules, self.modules_to_save = tuple(self.target_modules), tuple(self.modules_to_save)
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got r={self.r!r}; typical values are 4-64")
        if not self.lora_alpha > 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha!r}; the update is scaled by "
                             "lora_alpha / r (peft's default lora_alpha is 8)")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if not self.target_modules:
            raise ValueError("target_modules is empty; name at least one nn.Linear, e.g. ('query', 'value')")

    @property
    def scaling(self) -> float:
        return self.lora_alpha / self.r                                 # alpha / r


class LoraLinear(nn.Module):
    r"""A frozen ``nn.Linear`` plus a trainable low-rank branch: :math:`h = Wx + b + \frac{\alpha}{r} B A\,\mathrm{drop}(x)`.

    Parameters
    ----------
    base_layer : nn.Linear
        The pretrained layer; it is kept (not copied) and its parameters are frozen.
    r, lora_alpha, lora_dropout
        As in :class:`LoraConfig`.
    """

    def __init__(self, base_layer: nn.Linear, r: int, lora_alpha: float, lora_dropout: float = 0.0):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"LoraLinear wraps an nn.Linear, got {type(base_layer).__name__}")
        self.base_layer = base_layer
        self.r, self.lora_alpha = r, lora_alpha
        self.scaling = lora_alpha / r                                   # alpha / r
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        w = base_layer.weight
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False, device=w.device, dtype=w.dtype)   # (r, d_in)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False, device=w.device, dtype=w.dtype)  # (d_out, r)
        self.merged = False
        for p in self.base_layer.parameters():
            p.requires_grad_(False)
        self.reset_lora_parameters()

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The frozen weight ``W`` (so code that reads ``layer.weight`` keeps working)."""
        return self.base_layer.weight

    def reset_lora_parameters(self) -> None:
        """``peft``'s initialisation: A ~ Kaiming-uniform(a=sqrt(5)) (nn.Linear's default), B = 0, so BA = 0."""
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def delta_weight(self) -> torch.Tensor:
        return self.lora_B.weight @ self.lora_A.weight * self.scaling   # (alpha/r) B A: (d_out, d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base_layer(x)                                          # W x + b, (..., d_out)
        if self.merged:                                                 # W already holds W + (alpha/r) B A
            return h
        return h + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling   # + (alpha/r) B A drop(x)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the frozen weight: W <- W + (alpha/r) B A."""
        if not self.merged:
            self.base_layer.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge`: W <- W - (alpha/r) B A (equal to the original W up to rounding)."""
        if self.merged:
            self.base_layer.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, lora_alpha={self.lora_alpha}, merged={self.merged}"


def _matches(name: str, keys) -> bool:
    return any(name == k or name.endswith("." + k) for k in keys)   # peft's rule for a list of names


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct short names of the ``nn.Linear`` modules in ``model`` (what ``target_modules`` can name)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, nn.Linear) and name})


def apply_lora(model: nn.Module, config: LoraConfig) -> nn.Module:
    """Freeze ``model`` and wrap every target ``nn.Linear`` in a :class:`LoraLinear` (in place).

    Afterwards only the ``lora_A`` / ``lora_B`` matrices and the parameters of
    ``config.modules_to_save`` are trainable.

    Parameters
    ----------
    model : nn.Module
        E.g. our ``BertModel``, ``BertForSequenceClassification`` or ``BertForTokenClassification``.
    config : LoraConfig

    Returns
    -------
    nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        When a target or a module to save matches nothing, naming the available ``nn.Linear`` names;
        when a target is not an ``nn.Linear``; when the model already has LoRA layers.
    """
    if not isinstance(config, LoraConfig):
        raise TypeError(f"config must be a LoraConfig, got {type(config).__name__}")
    if lora_layers(model):
        raise ValueError("the model already has LoRA layers; apply_lora once (merge_and_unload first to re-apply)")
    names = dict(model.named_modules())
    linear = linear_module_names(model)
    for key in config.target_modules:
        hits = [n for n in names if n and _matches(n, [key])]
        if not hits:
            raise ValueError(f"LoRA target module {key!r} does not exist in {type(model).__name__}; "
                             f"available nn.Linear module names: {', '.join(linear)}")
        wrong = [n for n in hits if not isinstance(names[n], nn.Linear)]
        if wrong:
            raise ValueError(f"LoRA target {key!r} matches {wrong[0]!r}, a {type(names[wrong[0]]).__name__}, "
                             f"not an nn.Linear; available nn.Linear module names: {', '.join(linear)}")
    for key in config.modules_to_save:
        if not any(n and _matches(n, [key]) for n in names):
            raise ValueError(f"module to save {key!r} does not exist in {type(model).__name__}; "
                             f"top-level modules: {', '.join(n for n, _ in model.named_children())}")
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [n for n, m in names.items() if n and isinstance(m, nn.Linear) and _matches(n, config.target_modules)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoraLinear(names[name], config.r, config.lora_alpha, config.lora_dropout))
    for name, module in model.named_modules():
        if name and _matches(name, config.modules_to_save):
            for p in module.parameters():
                p.requires_grad_(True)
    return model


def lora_layers(model: nn.Module) -> dict[str, LoraLinear]:
    """Every :class:`LoraLinear` in ``model`` by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLinear)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer (``W <- W + (alpha/r) BA``); the forward pass then costs what the base model's does."""
    for layer in lora_layers(model).values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_lora`."""
    for layer in lora_layers(model).values():
        layer.unmerge()
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge, then replace each :class:`LoraLinear` by its (merged) plain ``nn.Linear``, like ``peft``'s."""
    for name, layer in lora_layers(model).items():
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.base_layer)
    return model


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; shared (tied) tensors are counted once.

    ``100 * trainable / total`` is the "trainable%" that ``peft``'s ``print_trainable_parameters`` prints.
    """
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():          # nn.Module.parameters() already skips repeated tensors
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def training_memory(model: nn.Module, batch: dict) -> dict[str, int]:
    """Bytes a training step needs besides the weights, measured on one ``batch`` (a dict with ``labels``).

    Returns
    -------
    dict
        ``activations``: what autograd saves for the backward pass during the forward pass (found with
        ``torch.autograd.graph.saved_tensors_hooks``, each storage once, the weights themselves not
        counted). A frozen ``nn.Linear`` saves no copy of its input (no weight gradient is needed), so
        freezing the model shrinks this too. ``gradients_and_adam``: a gradient plus AdamW's two moments,
        3 x 4 bytes per trainable float32 parameter.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**{k: v for k, v in batch.items() if k != "index"}).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
    trainable, _ = parameter_counts(model)
    return {"activations": sum(saved.values()), "gradients_and_adam": 12 * trainable}
