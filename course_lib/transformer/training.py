r"""A small, readable training loop: AdamW, warm-up + cosine schedule, gradient clipping, evaluation.

One optimisation step on a batch, with parameters :math:`\theta`, gradient :math:`g` and step s:

1. **loss** (损失): the mean cross-entropy of the next token,
   :math:`\mathcal{L} = -\frac{1}{N}\sum_{i=1}^{N} \log p_\theta(y_i \mid \text{context}_i)`;
2. **backward**: :math:`g = \nabla_\theta \mathcal{L}` (反向传播);
3. **clip** (梯度裁剪): :math:`g \leftarrow g \cdot \min\!\big(1, \frac{c}{\lVert g \rVert_2 + 10^{-6}}\big)`,
   with :math:`\lVert g \rVert_2` the norm of *all* gradients stacked together (``max_grad_norm`` = c);
4. **schedule** (学习率调度): :math:`\eta_s = \eta \cdot \lambda(s)` with a linear warm-up followed by a
   cosine decay down to ``min_lr_rate`` :math:`\cdot\, \eta`:

   .. math::
       \lambda(s) = \begin{cases} s / s_w & s < s_w \\
       r + (1 - r)\,\tfrac{1}{2}\big(1 + \cos(\pi \tfrac{s - s_w}{S - s_w})\big) & s \ge s_w \end{cases}

   (:math:`s_w` = ``warmup_steps``, S = ``max_steps``, r = ``min_lr_rate``), exactly the multiplier of
   ``transformers.get_cosine_with_min_lr_schedule_with_warmup``; like Hugging Face, the first step
   (s = 0) has learning rate 0;
5. **AdamW** (Loshchilov and Hutter, 2019): Adam's update plus a *decoupled* weight decay
   :math:`\theta \leftarrow \theta - \eta_s \lambda_{wd} \theta`, applied only to matrices (linear layers
   and embeddings), never to biases or LayerNorm gains (:func:`param_groups`).

Validation loss :math:`\bar{\mathcal{L}}` is averaged over *tokens*, not batches, and perplexity
(困惑度) is :math:`\exp(\bar{\mathcal{L}})`: the number of equally likely tokens the model is, on
average, choosing between.

Field names of :class:`TrainConfig` follow ``transformers.TrainingArguments``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..attention.checks import check_int, check_number

__all__ = ["TrainConfig", "History", "lr_lambda", "learning_rate_at", "param_groups", "make_optimizer",
           "clip_grad_norm", "causal_lm_loss", "seq2seq_loss", "evaluate", "train"]

# A loss function takes (model, batch) and returns (mean loss over the batch's tokens, number of tokens).
LossFn = Callable[[nn.Module, tuple], tuple[torch.Tensor, int]]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`, named as in ``transformers.TrainingArguments``."""
    max_steps: int = 1000
    per_device_train_batch_size: int = 16
    learning_rate: float = 1e-3          # peak learning rate, reached after the warm-up
    weight_decay: float = 0.1            # AdamW's decoupled decay, matrices only
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0    # clip the global gradient norm to this; None: no clipping
    warmup_steps: int = 100
    min_lr_rate: float = 0.1             # the cosine ends at min_lr_rate * learning_rate
    logging_steps: int = 100             # print (and record) the mean train loss every N steps
    eval_steps: int | None = None        # evaluate every N steps (and always at the end)
    seed: int = 0

    def __post_init__(self):
        for name in ("max_steps", "per_device_train_batch_size", "logging_steps"):
            check_int(f"TrainConfig.{name}", getattr(self, name), minimum=1)
        if self.eval_steps is not None:
            check_int("TrainConfig.eval_steps", self.eval_steps, minimum=1)
        check_int("TrainConfig.warmup_steps", self.warmup_steps, minimum=0)
        check_int("TrainConfig.seed", self.seed)
        check_number("TrainConfig.learning_rate", self.learning_rate, positive=True)
        check_number("TrainConfig.adam_epsilon", self.adam_epsilon, positive=True)
        if check_number("TrainConfig.weight_decay", self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0 (0: no decay), got {self.weight_decay}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= check_number(f"TrainConfig.{name}", getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in [0, 1) (an exponential-average rate), got {getattr(self, name)}")
        check_number("TrainConfig.min_lr_rate", self.min_lr_rate)
        if self.max_grad_norm is not None:
            check_number("TrainConfig.max_grad_norm", self.max_grad_norm)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"warmup_steps must be in [0, max_steps={self.max_steps}], got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_rate <= 1.0:
            raise ValueError(f"min_lr_rate must be in [0, 1], got {self.min_lr_rate}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 (or None for no clipping), got {self.max_grad_norm}")
        if self.logging_steps < 1 or (self.eval_steps is not None and self.eval_steps < 1):
            raise ValueError("logging_steps and eval_steps must be >= 1")


@dataclass
class History:
    """What :func:`train` measured; ``to_dict`` / ``from_dict`` round-trip through JSON.

    ``step`` / ``train_loss`` / ``learning_rate`` / ``grad_norm``: one entry per logging window
    (``train_loss`` and ``grad_norm`` are means over the window, ``learning_rate`` the last value);
    ``eval_step`` / ``eval_loss``: one entry per evaluation (``eval_step`` 0 = before training).
    """
    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    train_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# ----------------------------------------------------------------------------- schedule

def lr_lambda(step: int, warmup_steps: int, max_steps: int, min_lr_rate: float = 0.0) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (0-based): linear warm-up, then cosine.

    Equal to the lambda of ``transformers.get_cosine_with_min_lr_schedule_with_warmup``.
    """
    step = check_int("step", step, minimum=0)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    if not 0.0 <= check_number("min_lr_rate", min_lr_rate) <= 1.0:
        raise ValueError(f"min_lr_rate must be in [0, 1], got {min_lr_rate}")
    if step < warmup_steps:
        return step / max(1, warmup_steps)                                       # linear: s / s_w
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)          # 0 -> 1 over the decay
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))                          # 1 -> 0
    return max(0.0, min_lr_rate + (1.0 - min_lr_rate) * cosine)                  # r + (1 - r) cos-term


def learning_rate_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate used by optimiser step ``step``: ``learning_rate * lr_lambda(step)``."""
    return cfg.learning_rate * lr_lambda(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_rate)


# ----------------------------------------------------------------------------- optimiser

def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups: matrices with ``weight_decay``, vectors without.

    A parameter with two or more dimensions (linear weights, embedding tables) is decayed;
    biases and LayerNorm/RMSNorm gains (one dimension) are not: decaying a gain towards 0 would
    shrink the normalised activations, which is not the "simpler model" weight decay aims for.
    Shared (tied) parameters appear once. Each group also lists the parameter ``names``.
    """
    decay, no_decay = {"params": [], "names": [], "weight_decay": weight_decay}, \
        {"params": [], "names": [], "weight_decay": 0.0}
    for name, p in model.named_parameters():            # tied weights are yielded once
        if not p.requires_grad:
            continue
        group = decay if p.dim() >= 2 else no_decay
        group["params"].append(p)
        group["names"].append(name)
    return [g for g in (decay, no_decay) if g["params"]]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, with the config's betas and epsilon."""
    groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, cfg.weight_decay)]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                             eps=cfg.adam_epsilon)


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    Same rule as ``torch.nn.utils.clip_grad_norm_``; returns the norm *before* clipping.
    ``max_norm=math.inf`` measures without clipping.
    """
    max_norm = float(max_norm) if isinstance(max_norm, (int, float)) and not isinstance(max_norm, bool) else max_norm
    if not isinstance(max_norm, float) or not max_norm > 0:      # NaN fails "> 0" too
        raise ValueError(f"max_norm must be a number > 0 (math.inf: measure only), got {max_norm!r}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))  # ||g||_2
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)                      # min(1, c / (||g|| + eps))
    for g in grads:
        g.mul_(scale)
    return float(total)


# ----------------------------------------------------------------------------- losses

def _unpack(batch, n: int, what: str) -> tuple:
    if not isinstance(batch, (tuple, list)) or len(batch) != n:
        length = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
        raise TypeError(f"a batch must be a tuple of {n} tensors {what}, got {type(batch).__name__}{length}")
    return tuple(batch)


def causal_lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Next-token cross-entropy of a causal LM: batch = (input_ids (B, T), labels (B, T)).

    ``labels[b, t]`` is the token that follows ``input_ids[b, t]``; returns (mean loss, B * T).
    """
    x, y = _unpack(batch, 2, "(input_ids, labels)")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"labels must be a tensor of the shape of input_ids {tuple(x.shape)} (the next token of "
                         f"each position), got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    logits = model(x)                                                            # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # (B*T, V) vs (B*T,)
    return loss, y.numel()


def seq2seq_loss(model: nn.Module, batch: tuple, pad_token_id: int = 0) -> tuple[torch.Tensor, int]:
    """Teacher-forcing cross-entropy of an encoder-decoder, padding ignored.

    batch = (input_ids (B, S), attention_mask (B, S), decoder_input_ids (B, T), labels (B, T)),
    with ``labels == pad_token_id`` where the target is padding. Returns (mean loss, target tokens).
    """
    src, mask, dec_in, labels = _unpack(batch, 4, "(input_ids, attention_mask, decoder_input_ids, labels)")
    if not isinstance(labels, torch.Tensor) or not isinstance(dec_in, torch.Tensor) or labels.shape != dec_in.shape:
        raise ValueError("labels must be a tensor of the shape of decoder_input_ids (B, T)")
    logits = model(src, dec_in, attention_mask=mask)                             # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=pad_token_id)
    return loss, int((labels != pad_token_id).sum())


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple], loss_fn: LossFn = causal_lm_loss) -> float:
    """Mean loss per token over ``batches`` (token-weighted), in eval mode (no dropout).

    Perplexity is ``math.exp(evaluate(...))``. The model's train/eval mode is restored afterwards.
    """
    _check_model(model)
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    for batch in batches:
        loss, count = loss_fn(model, batch)
        total += loss.item() * count                                             # sum of token losses
        n += count
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got no tokens: the evaluation batches are empty")
    return total / n


# ----------------------------------------------------------------------------- the loop

def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")


def train(model: nn.Module, cfg: TrainConfig, next_batch: Callable[[int], tuple],
          loss_fn: LossFn = causal_lm_loss, eval_fn: Callable[[nn.Module], float] | None = None,
          log: Callable[[str], None] | None = print) -> History:
    """Train ``model`` for ``cfg.max_steps`` optimiser steps and return the :class:`History`.

    Parameters
    ----------
    model : nn.Module
        Put in train mode here; its parameters are updated in place.
    cfg : TrainConfig
    next_batch : callable step -> batch
        Returns the training batch of step ``step`` (tensors already on the model's device).
    loss_fn : callable (model, batch) -> (mean loss, tokens)
        :func:`causal_lm_loss` (default) or :func:`seq2seq_loss`.
    eval_fn : callable model -> float, optional
        Validation loss, e.g. ``lambda m: evaluate(m, valid_batches)``; called before training,
        every ``cfg.eval_steps`` steps and at the end.
    log : callable str -> None, optional
        Receives one progress line every ``cfg.logging_steps`` steps (``print`` by default; None: silent).
    """
    _check_model(model)
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    for name, fn in (("next_batch", next_batch), ("loss_fn", loss_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
    torch.manual_seed(cfg.seed)                                # dropout masks are reproducible
    optimizer = make_optimizer(model, cfg)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    history = History()
    if eval_fn is not None:
        history.eval_step.append(0)
        history.eval_loss.append(eval_fn(model))
    model.train()
    window_loss, window_norm, start = [], [], time.perf_counter()
    for step in range(cfg.max_steps):
        lr = learning_rate_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr                                   # eta_s = eta * lambda(s)
        loss, _ = loss_fn(model, next_batch(step))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower learning_rate "
                                     "or set max_grad_norm")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()                                        # g = dL/dtheta
        norm = clip_grad_norm(params, cfg.max_grad_norm or math.inf)   # inf: measure, do not clip
        optimizer.step()                                       # AdamW update with decoupled decay
        window_loss.append(loss.item())
        window_norm.append(norm)
        done = step + 1
        evaluate_now = eval_fn is not None and (done == cfg.max_steps or
                                                (cfg.eval_steps is not None and done % cfg.eval_steps == 0))
        if evaluate_now:
            history.eval_step.append(done)
            history.eval_loss.append(eval_fn(model))
            model.train()
        if done % cfg.logging_steps == 0 or done == cfg.max_steps:
            history.step.append(done)
            history.train_loss.append(sum(window_loss) / len(window_loss))
            history.grad_norm.append(sum(window_norm) / len(window_norm))
            history.learning_rate.append(lr)
            if log is not None:
                line = (f"step {done:>5}/{cfg.max_steps} | train loss {history.train_loss[-1]:.2f} | "
                        f"lr {lr:.1e} | grad norm {history.grad_norm[-1]:.2f}")
                if evaluate_now:
                    line += f" | val loss {history.eval_loss[-1]:.2f}"
                log(line)
            window_loss, window_norm = [], []
    history.train_seconds = time.perf_counter() - start
    return history
