r"""The plain PyTorch fine-tuning loop: what ``transformers.Trainer`` does, in one screen.

For every epoch, the batch order is reshuffled (seeded); for every batch:

1. ``loss = model(**batch).loss`` (the model computes its own loss from ``labels``);
2. ``loss.backward()``; stop with ``FloatingPointError`` if the loss is not finite;
3. clip the global gradient norm to ``max_grad_norm`` (Trainer's default 1.0);
4. AdamW step (Loshchilov and Hutter, 2019) with decoupled weight decay on matrices only;
5. learning-rate schedule of Devlin et al. (2019) and of ``get_linear_schedule_with_warmup``:

   .. math::
       \eta_s = \eta\,\lambda(s), \qquad
       \lambda(s) = \begin{cases} s / s_w & s < s_w \\ \max\big(0, \frac{S - s}{S - s_w}\big) & s \ge s_w \end{cases}

   with :math:`s_w` = ``warmup_ratio`` :math:`\cdot S` warm-up steps and S the total number of steps.

After every epoch (and every ``eval_every`` steps) :func:`evaluate` measures the loss and the
accuracy on the validation batches with dropout off (``model.eval()``, ``torch.no_grad()``).
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..transformer.training import clip_grad_norm, param_groups

__all__ = ["FitConfig", "FitHistory", "linear_schedule", "fit", "evaluate", "predict_logits"]


@dataclass
class FitConfig:
    """Hyper-parameters of :func:`fit`, named as in ``transformers.TrainingArguments`` where they exist."""
    epochs: float = 3                 # TrainingArguments.num_train_epochs
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0
    max_steps: int | None = None      # stop after this many steps (overrides epochs when smaller)
    eval_every: int | None = None     # also evaluate every N steps (for smoother curves)
    seed: int = 0

    def __post_init__(self):
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")


@dataclass
class FitHistory:
    """What :func:`fit` measured (JSON-friendly). Per step: ``step``, ``train_loss``, ``learning_rate``;
    per evaluation: ``eval_step``, ``eval_epoch``, ``eval_loss``, ``eval_accuracy``."""
    config: dict = field(default_factory=dict)
    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_epoch: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    train_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def linear_schedule(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak learning rate at step ``step`` (0-based): linear warm-up, linear decay to 0."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)                                     # s / s_w
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))  # (S - s) / (S - s_w)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items() if k != "index"}


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Sequence[dict]) -> list[torch.Tensor]:
    """Logits of every batch, in batch order, with dropout off (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(**{k: v for k, v in _to(b, device).items() if k != "labels"}).logits.float().cpu()
           for b in batches]
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, batches: Sequence[dict]) -> dict:
    """Mean loss (per example / per labelled token), accuracy, predictions and labels.

    Sequence labels (B,): ``predictions`` and ``labels`` are int arrays in the *original example
    order* (from each batch's ``index``). Token labels (B, T) with -100 on ignored positions:
    per-example arrays of the labelled positions only (what ``seqeval`` needs after mapping to tags).
    """
    if len(batches) == 0:
        raise ValueError("evaluate() got no batches")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, count, preds, labels, index = 0.0, 0, [], [], []
    for b in batches:
        out = model(**_to(b, device))
        y = b["labels"]
        p = out.logits.argmax(-1).cpu()                                       # (B,) or (B, T)
        n = int((y != -100).sum())                                           # examples / labelled tokens
        total_loss += float(out.loss) * n
        count += n
        if y.dim() == 1:
            preds.append(p.numpy())
            labels.append(y.numpy())
        else:
            keep = y != -100
            preds.extend(p[r][keep[r]].numpy() for r in range(len(y)))
            labels.extend(y[r][keep[r]].numpy() for r in range(len(y)))
        index.append(b["index"].numpy() if "index" in b else np.arange(len(y)) + sum(map(len, index)))
    model.train(was_training)
    order = np.argsort(np.concatenate(index), kind="stable")
    if batches[0]["labels"].dim() == 1:
        preds, labels = np.concatenate(preds)[order], np.concatenate(labels)[order]
        accuracy = float((preds == labels).mean())
    else:
        preds, labels = [preds[i] for i in order], [labels[i] for i in order]
        hits = sum(int((p == y).sum()) for p, y in zip(preds, labels))
        accuracy = hits / max(1, sum(len(y) for y in labels))
    return {"loss": total_loss / max(1, count), "accuracy": accuracy, "predictions": preds, "labels": labels}


def fit(model: nn.Module, train_batches: Sequence[dict], valid_batches: Sequence[dict] | None = None, *,
        epochs: float = 3, lr: float = 5e-5, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
        max_grad_norm: float | None = 1.0, max_steps: int | None = None, eval_every: int | None = None,
        seed: int = 0, progress: str | None = "epoch", eval_fn: Callable | None = None) -> FitHistory:
    """Fine-tune ``model`` in place on ``train_batches`` (dicts with ``labels``); returns the history.

    Parameters
    ----------
    model : nn.Module
        Its ``forward(**batch)`` returns an object with ``.loss`` and ``.logits``.
    train_batches, valid_batches : lists of batch dicts (e.g. from :func:`~course_lib.finetuning.data.make_batches`)
    epochs, lr, warmup_ratio, weight_decay, max_grad_norm, max_steps, eval_every, seed
        See :class:`FitConfig`. A fractional ``epochs`` stops part-way through the last epoch.
    progress : "epoch" (one line per evaluation on stdout), "bar" (also a tqdm bar on stderr) or None.
    eval_fn : callable(model, batches) -> dict with "loss" and "accuracy"; default :func:`evaluate`.
    """
    cfg = FitConfig(epochs=epochs, learning_rate=lr, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                    max_grad_norm=max_grad_norm, max_steps=max_steps, eval_every=eval_every, seed=seed)
    if len(train_batches) == 0:
        raise ValueError("fit() got no training batches")
    if "labels" not in train_batches[0]:
        raise ValueError("training batches have no 'labels': build them with make_batches(ids, labels, ...)")
    if progress not in ("epoch", "bar", None):
        raise ValueError(f"progress must be 'epoch', 'bar' or None, got {progress!r}")
    eval_fn = eval_fn or evaluate
    per_epoch = len(train_batches)
    total = math.ceil(cfg.epochs * per_epoch)
    total = min(total, cfg.max_steps) if cfg.max_steps else total
    warmup = int(cfg.warmup_ratio * total)
    device = next(model.parameters()).device
    groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, cfg.weight_decay)]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                            eps=cfg.adam_epsilon)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_schedule(s, warmup, total))
    params = [p for g in groups for p in g["params"]]
    hist = FitHistory(config=asdict(cfg))
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)                                          # dropout masks
    bar = None
    if progress == "bar":
        from tqdm.auto import tqdm
        bar = tqdm(total=total, file=sys.stderr, ascii=True, desc="fine-tuning", leave=False)
    start, step, window = time.perf_counter(), 0, []

    def run_eval(epoch_float):
        line = f"step {step:5d}  epoch {epoch_float:4.2f}  train loss {np.mean(window):.4f}"
        if valid_batches:
            m = eval_fn(model, valid_batches)
            hist.eval_step.append(step)
            hist.eval_epoch.append(round(epoch_float, 4))
            hist.eval_loss.append(float(m["loss"]))
            hist.eval_accuracy.append(float(m["accuracy"]))
            line += f"  valid loss {m['loss']:.4f}  valid acc {m['accuracy']:.4f}"
        if progress:
            print(line, flush=True)

    model.train()
    while step < total:
        order = torch.randperm(per_epoch, generator=gen).tolist()          # new batch order every epoch
        for i in order:
            out = model(**_to(train_batches[i], device))
            loss = out.loss
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"the loss became {value} at step {step}; lower the learning "
                                         f"rate (now {sched.get_last_lr()[0]:.2e}) or check the inputs")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm is not None:
                clip_grad_norm(params, cfg.max_grad_norm)
            hist.learning_rate.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
            step += 1
            hist.step.append(step)
            hist.train_loss.append(value)
            window.append(value)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            end_of_epoch = step % per_epoch == 0 or step == total
            if end_of_epoch or (cfg.eval_every and step % cfg.eval_every == 0):
                run_eval(step / per_epoch)
                window = []
            if step == total:
                break
    if bar is not None:
        bar.close()
    hist.train_seconds = time.perf_counter() - start
    model.eval()
    return hist
