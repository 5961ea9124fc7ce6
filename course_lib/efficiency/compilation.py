r"""``torch.compile``: trace the model once, fuse its small ops, run generated kernels.

Eager PyTorch runs one kernel per op and writes every intermediate tensor to memory: in a
Transformer block, LayerNorm, the bias add, GELU, the residual add and the dropout are each a
pass over a (B, T, D) tensor. ``torch.compile`` (Ansel et al., 2024) captures the Python code as
a graph (TorchDynamo), and its backend (TorchInductor) fuses chains of such element-wise ops
into one generated loop (C++/OpenMP on CPU, Triton on GPU), keeping matmuls in the vendor
libraries. The first call pays for tracing and code generation (tens of seconds on a CPU); every
later call with the same shapes reuses the compiled code. Results agree with eager to rounding
(the fused code sums in another order), which we check to 1e-5.

Here: our BERT (MiniLM weights) in inference and our GPT's training step (forward + backward),
each timed against its eager self and against Hugging Face's implementation with its default
attention path, interleaved in one run.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import nn


__all__ = ["interleaved_medians", "compile_with_time", "hf_gpt_from_ours", "gpt_train_step_fn",
           "compare_bert_inference", "compare_gpt_train_step"]


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int = 10, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, called round-robin (a, b, c, a, b, c, ...) ``repeats`` times.

    Round-robin order puts every function under the same machine load, so ratios stay meaningful
    on a shared machine even when absolute times do not.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    cuda = torch.cuda.is_available()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def compile_with_time(fn: Callable, *args, **compile_kwargs) -> tuple[Callable, float, object]:
    """``torch.compile(fn)``, called once on ``args``: returns (compiled, seconds of that first call, its output).

    ``compiled.graphs`` is the number of graphs Dynamo captured and Inductor compiled in that call.

    The first call is where Dynamo traces and Inductor generates and builds code, so its time is
    the compile time (it includes one ordinary run).
    """
    from torch._dynamo.utils import counters
    graphs_before = counters["stats"]["unique_graphs"]
    compiled = torch.compile(fn, **compile_kwargs)
    start = time.perf_counter()
    out = compiled(*args)
    seconds = time.perf_counter() - start
    compiled.graphs = counters["stats"]["unique_graphs"] - graphs_before     # 0 would mean nothing was compiled
    return compiled, seconds, out


def hf_gpt_from_ours(model: nn.Module):
    """A ``transformers.GPT2LMHeadModel`` with our GPT's config and weights (HF's default attention)."""
    import transformers
    from dataclasses import asdict
    cfg = {k: v for k, v in asdict(model.config).items() if k != "attn_implementation"}
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg))
    state = {k: (v.t() if k.endswith(model.hf_transposed) else v) for k, v in model.state_dict().items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.endswith(("attn.bias", "attn.masked_bias"))]:
        raise RuntimeError(f"weight port failed: missing {missing}, unexpected {unexpected}")
    return hf.train(model.training)


def gpt_train_step_fn(model: nn.Module, hf: bool = False) -> Callable:
    """``step(input_ids, labels) -> loss``: forward and backward of the mean next-token cross-entropy."""
    def step(x, y):
        logits = model(input_ids=x).logits if hf else model(x)                 # (B, T, V)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        return loss.detach()
    return step


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def compare_bert_inference(ours: nn.Module, hf: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                           repeats: int = 10) -> dict:
    """Time our BERT (eager, compiled) and Hugging Face's BERT (default attention) on one padded batch.

    Returns seconds per batch for each, the compile time, the ratios to HF, and the largest
    difference of the compiled last hidden state from eager (real tokens only).
    """
    real = attention_mask.bool()
    with torch.inference_mode():
        eager_out = ours(input_ids, attention_mask).last_hidden_state            # (B, T, D)
        hf_out = hf(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        fwd = lambda: ours(input_ids, attention_mask).last_hidden_state          # noqa: E731
        compiled, compile_s, comp_out = compile_with_time(fwd)
        t = interleaved_medians({"ours_eager": fwd, "ours_compiled": compiled,
                                 "hf": lambda: hf(input_ids=input_ids, attention_mask=attention_mask)}, repeats)
    return {**{f"{k}_s": v for k, v in t.items()}, "compile_s": compile_s,
            "speedup_compiled_vs_eager": t["ours_eager"] / t["ours_compiled"],
            "speedup_eager_vs_hf": t["hf"] / t["ours_eager"], "speedup_compiled_vs_hf": t["hf"] / t["ours_compiled"],
            "max_diff_compiled": float((comp_out - eager_out)[real].abs().max()),
            "max_diff_hf": float((hf_out - eager_out)[real].abs().max()), "graphs_compiled": compiled.graphs,
            "hf_attn_implementation": hf.config._attn_implementation}


def compare_gpt_train_step(model: nn.Module, batch: tuple, repeats: int = 10) -> dict:
    """Time one training step (forward + backward) of our GPT eager, compiled, and of HF's GPT-2.

    Returns seconds per step, the compile time, the ratios, and the largest loss and gradient
    differences of the compiled step from eager.
    """
    x, y = batch
    hf = hf_gpt_from_ours(model)
    eager = gpt_train_step_fn(model)
    model.zero_grad(set_to_none=True)
    loss_eager = eager(x, y)
    g_eager = _grads(model)
    model.zero_grad(set_to_none=True)
    compiled, compile_s, loss_comp = compile_with_time(gpt_train_step_fn(model), x, y)
    g_comp = _grads(model)
    hf_step = gpt_train_step_fn(hf, hf=True)
    t = interleaved_medians({"ours_eager": lambda: eager(x, y), "ours_compiled": lambda: compiled(x, y),
                             "hf": lambda: hf_step(x, y)}, repeats)
    model.zero_grad(set_to_none=True)
    return {**{f"{k}_s": v for k, v in t.items()}, "compile_s": compile_s,
            "speedup_compiled_vs_eager": t["ours_eager"] / t["ours_compiled"],
            "speedup_eager_vs_hf": t["hf"] / t["ours_eager"], "speedup_compiled_vs_hf": t["hf"] / t["ours_compiled"],
            "loss_diff": float((loss_comp - loss_eager).abs()),
            "max_grad_diff": max(float((g_comp[n] - g_eager[n]).abs().max()) for n in g_eager),
            "graphs_compiled": compiled.graphs,
            "hf_attn_implementation": hf.config._attn_implementation}
