r"""Activation checkpointing: keep only each block's input, recompute the rest during backward.

Backpropagation needs the activations of the forward pass: every op saves what its backward
reads (a matmul its input, GELU its input, softmax its output, ...). For a stack of L blocks
the saved activations grow like :math:`L \cdot B T D \cdot c` bytes, usually far more than the
weights. Chen et al. (2016) trade compute for memory: run a block's forward **without** saving
anything but its input, and when backward reaches that block, run its forward again (now saving)
and backpropagate through it. Memory held between forward and backward drops to one (B, T, D)
tensor per block, plus one block's activations at a time during backward; the price is one extra
forward per block, about a third more compute (a backward costs about two forwards).

``torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)`` does exactly this.

**What we measure (CPU).** PyTorch's CPU allocator keeps no peak statistics, and ``tracemalloc``
does not see tensor memory. We count instead the bytes autograd *keeps for backward*: every
tensor an op saves passes through ``torch.autograd.graph.saved_tensors_hooks``; we add up the
distinct storages (parameters excluded: they are held anyway), plus the block inputs a
checkpoint keeps. That is the activation memory held at the end of the forward, the quantity
checkpointing reduces. The peak during backward adds one block's recomputed activations (we
measure one block alone and add it). On a GPU, ``torch.cuda.max_memory_allocated`` measures the
real peak, which the benchmark reports when CUDA is present.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..transformer.training import causal_lm_loss

__all__ = ["blocks_of", "enable_checkpointing", "disable_checkpointing", "is_checkpointed", "SavedBytes",
           "saved_activation_bytes", "ActivationMemory", "activation_memory", "time_train_step",
           "checkpoint_tradeoff"]

_HELD: list | None = None        # while measuring: the tensors checkpointed blocks keep (their inputs)


def blocks_of(model: nn.Module) -> nn.ModuleList:
    """The Transformer blocks of our GPT (``transformer.h``) or BERT (``encoder.layer``, also under ``bert.``)."""
    for path in ("transformer.h", "encoder.layer", "bert.encoder.layer", "model.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, nn.ModuleList):
            return obj
    raise TypeError(f"{type(model).__name__} has no transformer.h / encoder.layer block list; checkpointing "
                    "here supports the course's GPT and BERT models")


def _checkpointed_forward(block: nn.Module, forward: Callable):
    def run(*args, **kwargs):
        if not (torch.is_grad_enabled() and block.training):
            return forward(*args, **kwargs)                                    # inference: nothing to save anyway
        if _HELD is not None:
            _HELD.extend(a for a in args if isinstance(a, torch.Tensor))
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)      # keep args only, recompute in backward
    run.checkpointed = True
    return run


def enable_checkpointing(model: nn.Module, every: int = 1) -> nn.Module:
    """Checkpoint every ``every``-th block of ``model`` (in place; parameter names unchanged)."""
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive int (1 = checkpoint every block), got {every!r}")
    for i, block in enumerate(blocks_of(model)):
        if i % every == 0 and not is_checkpointed(block):
            block.forward = _checkpointed_forward(block, block.forward)
    return model


def disable_checkpointing(model: nn.Module) -> nn.Module:
    """Undo :func:`enable_checkpointing`."""
    for block in blocks_of(model):
        if is_checkpointed(block):
            del block.forward                                                  # back to the class's forward
    return model


def is_checkpointed(block: nn.Module) -> bool:
    return getattr(block.__dict__.get("forward"), "checkpointed", False)


@dataclass
class SavedBytes:
    """Bytes autograd keeps for backward: ``saved`` by ops, ``held`` by checkpoints, ``total`` (distinct)."""
    saved: int
    held: int
    total: int


@contextmanager
def _count_saved(params: set[int]):
    global _HELD
    storages: dict[int, int] = {}
    held: list = []

    def pack(t: torch.Tensor):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            storages[st.data_ptr()] = st.nbytes()                              # one entry per storage (views share it)
        return t

    _HELD, box = held, {}
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield box
    finally:
        _HELD = None
        saved = sum(storages.values())
        held_st = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in held}
        box["result"] = SavedBytes(saved, sum(held_st.values()), sum({**storages, **held_st}.values()))


def saved_activation_bytes(model: nn.Module, fn: Callable[[], torch.Tensor]) -> SavedBytes:
    """Run ``fn()`` (a forward returning a loss) and count the activation bytes kept for its backward.

    Calls ``backward()`` on the result afterwards, so the graph is freed (and ``.grad`` filled).
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with _count_saved(params) as box:
        loss = fn()
    loss.backward()
    return box["result"]


@dataclass
class ActivationMemory:
    """Activation memory of one training step: held after the forward, and the backward peak estimate."""
    held_bytes: int                   # everything autograd keeps after the forward
    block_bytes: int                  # what one block saves when it runs (is recomputed) normally
    checkpointed: bool

    @property
    def peak_bytes(self) -> int:
        """Held bytes plus one block's recomputed activations when checkpointing (0 extra otherwise)."""
        return self.held_bytes + (self.block_bytes if self.checkpointed else 0)


def activation_memory(model: nn.Module, batch: tuple, loss_fn: Callable = causal_lm_loss) -> ActivationMemory:
    """Measure :class:`ActivationMemory` of one forward/backward of ``model`` on ``batch``."""
    model.train()
    model.zero_grad(set_to_none=True)
    blocks = blocks_of(model)
    ckpt = any(is_checkpointed(b) for b in blocks)
    held = saved_activation_bytes(model, lambda: loss_fn(model, batch)[0]).total
    first = blocks[0]
    x_in = {}
    handle = first.register_forward_pre_hook(lambda m, args: x_in.setdefault("x", args[0].detach()))
    try:
        with torch.no_grad():
            loss_fn(model, batch)
    finally:
        handle.remove()
    x = x_in["x"].requires_grad_(True)
    forward = type(first).forward.__get__(first)                               # the block itself, not checkpointed
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with _count_saved(params) as box:
        out = forward(x)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    model.zero_grad(set_to_none=True)
    return ActivationMemory(held, box["result"].saved, ckpt)


def time_train_step(model: nn.Module, batch: tuple, loss_fn: Callable = causal_lm_loss) -> float:
    """Seconds of one forward + backward (no optimizer step)."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss_fn(model, batch)[0].backward()
    if next(model.parameters()).is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def checkpoint_tradeoff(make_model: Callable[[int], nn.Module], depths: Sequence[int], batch: tuple,
                        repeats: int = 5, loss_fn: Callable = causal_lm_loss) -> list[dict]:
    """For each depth: activation memory and median step time, without and with checkpointing.

    ``make_model(n_layer)`` builds a model; the two variants share its weights and their timed steps
    alternate (plain, checkpointed, plain, ...), so machine load affects both alike.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rows = []
    for depth in depths:
        model = make_model(depth)
        mem_plain = activation_memory(disable_checkpointing(model), batch, loss_fn)
        mem_ckpt = activation_memory(enable_checkpointing(model), batch, loss_fn)
        times = {False: [], True: []}
        for _ in range(repeats + 1):                                           # first round = warm-up
            for ck in (False, True):
                (enable_checkpointing if ck else disable_checkpointing)(model)
                times[ck].append(time_train_step(model, batch, loss_fn))
        disable_checkpointing(model)
        t_plain, t_ckpt = (statistics.median(times[ck][1:]) for ck in (False, True))
        rows.append({"n_layer": depth, "held_mb": mem_plain.held_bytes / 2**20,
                     "held_mb_ckpt": mem_ckpt.held_bytes / 2**20, "peak_mb": mem_plain.peak_bytes / 2**20,
                     "peak_mb_ckpt": mem_ckpt.peak_bytes / 2**20, "step_s": t_plain, "step_s_ckpt": t_ckpt,
                     "memory_ratio": mem_ckpt.peak_bytes / mem_plain.peak_bytes, "time_ratio": t_ckpt / t_plain})
    return rows
