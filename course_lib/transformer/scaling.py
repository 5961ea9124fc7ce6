r"""Scaling laws in miniature: parameter and FLOP counts, a power-law fit, a fixed-token-budget experiment.

Kaplan et al. (2020) found that the test loss of a Transformer language model trained on enough data
falls as a power of its size,

.. math::
    L(N) = (N_c / N)^{\alpha_N}, \qquad \alpha_N \approx 0.076,

where N counts the **non-embedding** parameters (token and position tables left out: they are
look-ups, not computation). With few training tokens the loss levels off at a floor, so we fit

.. math::
    L(N) = a\,N^{-\alpha} + c

(``c``: the loss no model size removes under this budget). Training compute is, per token,
two multiply-adds per parameter forward and twice that backward: :math:`C \approx 6ND` FLOPs for
D tokens. Hoffmann et al. (2022, "Chinchilla") found the compute-optimal split at about
20 tokens per parameter.

:func:`run_size` trains one of our GPT-2s (:mod:`.gpt`) with the loop of :mod:`.training` on the first
``n_tokens`` tokens of WikiText-2 (one pass, no token seen twice) and measures the validation loss;
``tools/scaling_experiment.py`` runs it for every size in :data:`SIZES` and ships the results in
``checkpoints/scaling`` with SHA-256 sums that :func:`load_results` verifies.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..attention.checks import check_int, check_number
from ..utils import set_seed
from .checkpoint import checkpoint_path, verify_checkpoint
from .gpt import GPT2Config, GPT2LMHeadModel
from .lm_data import BlockBatches, encode_corpus, eval_batches, make_blocks
from .training import TrainConfig, evaluate, train

__all__ = ["KAPLAN_ALPHA_N", "CHINCHILLA_TOKENS_PER_PARAMETER", "RESULT_FILES", "ModelSize", "SIZES",
           "ScalingConfig", "PowerLawFit", "non_embedding_parameters", "kaplan_parameters",
           "training_flops", "flops_per_token", "tokens_per_parameter", "chinchilla_optimal_tokens",
           "fit_power_law", "fit_pure_power_law", "power_law", "encode_prefix", "prepare_data", "make_model",
           "run_size", "load_results"]

CHINCHILLA_TOKENS_PER_PARAMETER = 20.0       # Hoffmann et al. (2022): D_opt ~ 20 N
KAPLAN_ALPHA_N = 0.076                        # Kaplan et al. (2020), eq. (1.1)
RESULT_FILES = ("results.json", "curves.json", "points.csv")


@dataclass(frozen=True)
class ModelSize:
    """One model of the sweep: the GPT-2 shape (names as in ``GPT2Config``)."""
    name: str
    n_layer: int
    n_embd: int
    n_head: int


# Widths 16 -> 128 and depths 1 -> 4: non-embedding N from ~3e3 to ~8e5 (2.4 decades), ~x3 per step.
SIZES = (ModelSize("L1-d16", 1, 16, 2), ModelSize("L1-d32", 1, 32, 2), ModelSize("L2-d40", 2, 40, 2),
         ModelSize("L2-d64", 2, 64, 4), ModelSize("L3-d96", 3, 96, 4), ModelSize("L4-d128", 4, 128, 4))


@dataclass
class ScalingConfig:
    """The fixed budget every size shares (one pass over the first ``n_tokens`` training tokens)."""
    vocab_size: int = 1024               # byte-level BPE; small, so the output layer does not dominate
    block_size: int = 64                 # context length T
    per_device_train_batch_size: int = 16
    n_tokens: int = 2 ** 19              # D: training tokens per run = steps * B * T
    learning_rate: float = 3e-3
    warmup_steps: int = 64
    weight_decay: float = 0.1
    eval_steps: int = 64                 # learning curve on the first eval_blocks validation blocks
    eval_blocks: int = 64

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "per_device_train_batch_size", "n_tokens", "eval_steps",
                     "eval_blocks"):
            check_int(f"ScalingConfig.{name}", getattr(self, name), minimum=1)
        if self.n_tokens % (self.block_size * self.per_device_train_batch_size):
            raise ValueError(f"n_tokens={self.n_tokens} must be a multiple of block_size * batch size = "
                             f"{self.block_size * self.per_device_train_batch_size} (whole optimiser steps)")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be in [0, max_steps={self.max_steps}]; "
                             "raise n_tokens or lower warmup_steps")

    @property
    def max_steps(self) -> int:
        return self.n_tokens // (self.block_size * self.per_device_train_batch_size)


# ----------------------------------------------------------------------------- counting

def non_embedding_parameters(model: GPT2LMHeadModel) -> int:
    """N as Kaplan et al. count it: all parameters except the token and position tables.

    The output layer shares the token table (weight tying), so it is left out with it;
    LayerNorm gains and biases are counted.
    """
    if not isinstance(model, GPT2LMHeadModel):
        raise TypeError(f"model must be our GPT2LMHeadModel, got {type(model).__name__}")
    total = sum(p.numel() for p in model.parameters())                          # tied weights counted once
    return total - model.transformer.wte.weight.numel() - model.transformer.wpe.weight.numel()


def kaplan_parameters(n_layer: int, n_embd: int) -> int:
    """Kaplan et al.'s approximation N = 2 d L (2 d_attn + d_ff) = 12 L d^2 (d_attn = d, d_ff = 4d)."""
    n_layer, n_embd = check_int("n_layer", n_layer, minimum=1), check_int("n_embd", n_embd, minimum=1)
    return 12 * n_layer * n_embd ** 2                                             # 2 d L (2d + 4d)


def _positive(name: str, value) -> np.ndarray:
    try:
        arr = (value.detach().double().cpu().numpy() if isinstance(value, torch.Tensor)
               else np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a list/array of numbers, got {value!r}") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite numbers > 0, got {value!r}")
    return arr


def training_flops(n_params, n_tokens):
    """C = 6 N D: 2 FLOPs per parameter per token forward (a multiply and an add), 4 backward."""
    c = 6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens)    # C = 6 N D
    return float(c) if c.ndim == 0 else c


def flops_per_token(config: GPT2Config, n_ctx: int | None = None) -> dict[str, float]:
    """Training FLOPs per token, term by term (Kaplan et al. 2020, Table 1, times 3 for the backward pass).

    ``non_embedding`` = 6 N; ``attention`` = 6 n_layer n_ctx d (the q.k scores and the weighted sum);
    ``output_layer`` = 6 d V (the logits, which 6 N leaves out). ``total`` is their sum.
    """
    if not isinstance(config, GPT2Config):
        raise TypeError(f"config must be a GPT2Config, got {type(config).__name__}")
    n_ctx = config.n_positions if n_ctx is None else check_int("n_ctx", n_ctx, minimum=1)
    d, L = config.n_embd, config.n_layer
    inner = config.n_inner or 4 * d
    n = L * (4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d) + 2 * d      # = non_embedding_parameters
    terms = {"non_embedding": 6.0 * n,                                           # 3 * 2N
             "attention": 6.0 * L * n_ctx * d,                                   # 3 * 2 n_layer n_ctx d_attn
             "output_layer": 6.0 * d * config.vocab_size}                        # 3 * 2 d V
    terms["total"] = sum(terms.values())
    return terms


def tokens_per_parameter(n_tokens, n_params):
    """D / N; Chinchilla's compute-optimal runs sit near 20."""
    r = _positive("n_tokens", n_tokens) / _positive("n_params", n_params)
    return float(r) if r.ndim == 0 else r


def chinchilla_optimal_tokens(n_params, ratio: float = CHINCHILLA_TOKENS_PER_PARAMETER):
    """D_opt ~ 20 N tokens (Hoffmann et al., 2022)."""
    d = check_number("ratio", ratio, positive=True) * _positive("n_params", n_params)
    return float(d) if d.ndim == 0 else d


# ----------------------------------------------------------------------------- fitting

@dataclass
class PowerLawFit:
    """L(N) = a N^(-alpha) + c, with standard errors from the fit's covariance (NaN with no spare point)."""
    a: float
    alpha: float
    c: float
    a_err: float
    alpha_err: float
    c_err: float
    n_points: int
    rmse: float

    def __call__(self, n):
        return power_law(n, self.a, self.alpha, self.c)


def power_law(n, a: float, alpha: float, c: float):
    """a * n^(-alpha) + c."""
    return a * np.power(n, -alpha) + c


def _check_points(n_params, losses, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    n = _positive("n_params", n_params).ravel()
    try:
        loss = np.asarray(losses, dtype=float).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"losses must be a list/array of numbers, got {losses!r}") from None
    if n.shape != loss.shape:
        raise ValueError(f"n_params and losses must have the same length, got {n.size} and {loss.size}")
    if not np.all(np.isfinite(loss)):
        raise ValueError(f"losses must be finite, got {losses!r}")
    if len(np.unique(n)) < minimum:
        raise ValueError(f"fitting needs at least {minimum} distinct model sizes, got {len(np.unique(n))}; "
                         f"train more sizes")
    return n, loss


def fit_power_law(n_params, losses) -> PowerLawFit:
    """Least-squares fit of L(N) = a N^(-alpha) + c with ``scipy.optimize.curve_fit``.

    N is divided by its geometric mean inside the fit (so a stays of order 1) and a converted back.
    Bounds: a > 0, 0 < alpha < 5, 0 <= c <= min(L). Needs at least 3 distinct sizes (3 unknowns).
    """
    from scipy.optimize import curve_fit
    n, loss = _check_points(n_params, losses, 3)
    n_ref = float(np.exp(np.log(n).mean()))                                      # geometric mean of N
    x = n / n_ref
    p0 = (max(loss.max() - loss.min(), 1e-3), 0.3, 0.5 * loss.min())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                          # covariance with 0 spare points
        popt, pcov = curve_fit(power_law, x, loss, p0=p0, bounds=([0, 0, 0], [np.inf, 5.0, loss.min()]),
                               maxfev=20000)
    a_ref, alpha, c = (float(v) for v in popt)
    errs = np.sqrt(np.diag(pcov)) if len(n) > 3 and np.all(np.isfinite(pcov)) else np.full(3, np.nan)
    a = a_ref * n_ref ** alpha                                                   # a_ref (N/n_ref)^-alpha = a N^-alpha
    rmse = float(np.sqrt(np.mean((power_law(x, a_ref, alpha, c) - loss) ** 2)))
    return PowerLawFit(a, alpha, c, float(errs[0] * n_ref ** alpha), float(errs[1]), float(errs[2]), len(n), rmse)


def fit_pure_power_law(n_params, losses) -> tuple[float, float]:
    """Kaplan's form L = (N_c / N)^alpha (no floor): a straight line in log-log. Returns (alpha, N_c)."""
    n, loss = _check_points(n_params, losses, 2)
    if np.any(loss <= 0):
        raise ValueError("losses must be > 0 for a log-log fit")
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)                   # log L = -alpha log N + alpha log N_c
    alpha = -float(slope)
    return alpha, float(np.exp(intercept / alpha)) if alpha != 0 else math.inf


# ----------------------------------------------------------------------------- the experiment

def encode_prefix(tok, text: str, n_tokens: int, chars_per_token: float = 3.0) -> torch.Tensor:
    """The first ``n_tokens`` ids of ``text``, encoding only its shortest prefix of whole lines that holds
    ``n_tokens * chars_per_token`` characters (deterministic, so the script and the notebook agree)."""
    n_tokens = check_int("n_tokens", n_tokens, minimum=1)
    need, taken = n_tokens * check_number("chars_per_token", chars_per_token, positive=True), 0
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        taken += len(line)
        if taken >= need:
            break
    ids = encode_corpus(tok, "".join(lines[:i + 1]))
    if len(ids) < n_tokens:
        raise ValueError(f"the text prefix gave {len(ids)} tokens < n_tokens={n_tokens}: the text is too short "
                         "or chars_per_token is too small; raise chars_per_token")
    return ids[:n_tokens]


def prepare_data(tok, train_text: str, valid_text: str, cfg: ScalingConfig) -> dict[str, torch.Tensor]:
    """Training blocks (n_tokens / T, T + 1) from the start of ``train_text``; all validation blocks."""
    train_ids = encode_prefix(tok, train_text, cfg.n_tokens + 1)                 # +1: the last label
    valid_ids = encode_corpus(tok, valid_text)
    return {"train_blocks": make_blocks(train_ids, cfg.block_size),             # (D / T, T + 1)
            "valid_blocks": make_blocks(valid_ids, cfg.block_size)}


def make_model(size: ModelSize, cfg: ScalingConfig, seed: int = 0) -> GPT2LMHeadModel:
    """A fresh GPT-2 of shape ``size`` (no dropout: one pass over the data cannot overfit)."""
    config = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=size.n_embd,
                        n_layer=size.n_layer, n_head=size.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    set_seed(seed)
    return GPT2LMHeadModel(config)


def run_size(size: ModelSize, cfg: ScalingConfig, data: dict, seed: int = 0, log=None) -> dict:
    """Train one size on the fixed budget; returns its row of ``results.json`` and learning curve."""
    if not isinstance(size, ModelSize) or not isinstance(cfg, ScalingConfig):
        raise TypeError("run_size(size, cfg, data) needs a ModelSize (e.g. SIZES[0]) and a ScalingConfig")
    blocks = data["train_blocks"]
    B = cfg.per_device_train_batch_size
    if len(blocks) != cfg.max_steps * B or blocks.shape[1] != cfg.block_size + 1:
        raise ValueError(f"data['train_blocks'] must hold {cfg.max_steps * B} blocks of {cfg.block_size + 1} "
                         f"ids for this config, got {tuple(blocks.shape)}; build it with prepare_data(.., cfg)")
    model = make_model(size, cfg, seed)
    tc = TrainConfig(max_steps=cfg.max_steps, per_device_train_batch_size=B, learning_rate=cfg.learning_rate,
                     weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, logging_steps=cfg.eval_steps,
                     eval_steps=cfg.eval_steps, seed=seed)
    slice_batches = eval_batches(data["valid_blocks"][:cfg.eval_blocks], 64)
    t0, c0 = time.perf_counter(), time.process_time()
    history = train(model, tc, BlockBatches(blocks, B, seed=seed), eval_fn=lambda m: evaluate(m, slice_batches),
                    log=log)
    valid_loss = evaluate(model, eval_batches(data["valid_blocks"], 64))
    n = non_embedding_parameters(model)
    flops = flops_per_token(model.config)
    return {"name": size.name, **asdict(size), "seed": seed, "non_embedding_params": n,
            "total_params": sum(p.numel() for p in model.parameters()), "tokens": cfg.n_tokens,
            "flops_6nd": training_flops(n, cfg.n_tokens), "flops_total": flops["total"] * cfg.n_tokens,
            "tokens_per_parameter": tokens_per_parameter(cfg.n_tokens, n), "valid_loss": valid_loss,
            "final_train_loss": history.train_loss[-1], "seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(time.process_time() - c0, 1), "history": history.to_dict()}


def load_results(folder: str | Path | None = None) -> dict:
    """Read ``results.json`` of a scaling run (default: the shipped ``checkpoints/scaling``), after checking
    every file against ``checksums.json``.

    Raises
    ------
    FileNotFoundError
        The folder, ``checksums.json`` or a result file is missing.
    ChecksumError
        A file was altered since the run wrote it (rerun ``tools/scaling_experiment.py`` or restore it).
    """
    folder = checkpoint_path("scaling") if folder is None else Path(folder)
    sums = verify_checkpoint(folder)
    missing = [name for name in RESULT_FILES if name not in sums]
    if missing:
        raise FileNotFoundError(f"{folder.name}/checksums.json lists no {missing}: not the output of "
                                "tools/scaling_experiment.py")
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))
