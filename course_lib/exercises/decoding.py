"""Chapter 4 checkers: nucleus (top-p) filtering and the KV-cache update.

* :func:`check_top_p_filter` -- ``fn(logits, top_p) -> logits`` in torch: keep the smallest set of
  most likely tokens whose probability sums to at least ``top_p``, set the other logits to ``-inf``
  (as :func:`course_lib.transformer.decoding.top_p_filter`, at least one token always kept).
* :func:`check_kv_cache_update` -- ``fn(cache, layer_idx, k, v) -> (keys, values)``: write the new
  keys/values (B, H, T_new, Dh) of one layer after the ``cache.length`` stored ones of a
  :class:`~course_lib.transformer.blocks.KVCache`, return every stored position
  (B, H, length + T_new, Dh), and leave ``cache.length`` alone (the model calls ``advance``).
"""
from __future__ import annotations

import copy

import torch

from ..transformer.blocks import KVCache
from ..transformer.decoding import top_p_filter
from .core import CheckReport, ExerciseFailure, call, close, expect_close, expect_shape, passed

_TOP_P = "top_p_filter"
_KV = "kv_cache_update"


def _top_p_cases():
    g = torch.Generator().manual_seed(5)
    probs = torch.tensor([0.5, 0.3, 0.1, 0.06, 0.04])
    return [
        ("5 tokens, top_p = 0.75 (keeps 2: 0.5 + 0.3 crosses 0.75)", probs.log(), 0.75),
        ("top_p exactly reached (0.5 + 0.3 = 0.8)", probs.log()[[2, 0, 4, 1, 3]], 0.8),
        ("top_p = 1.0 keeps every token", torch.randn(4, 7, generator=g), 1.0),
        ("tiny top_p = 0.01 keeps only the most likely token", torch.randn(3, 6, generator=g), 0.01),
        ("batch of 4 rows, vocabulary of 50, top_p = 0.9", 2 * torch.randn(4, 50, generator=g), 0.9),
        ("V = 1", torch.randn(2, 1, generator=g), 0.5),
        ("float16 logits", torch.randn(3, 10, generator=g).half(), 0.7),
    ]


def _top_p_hint(got: torch.Tensor, want: torch.Tensor, logits: torch.Tensor, top_p: float) -> str:
    kept_g, kept_w = torch.isfinite(got), torch.isfinite(want)
    if got.dtype != logits.dtype:
        return f"return logits of the input's dtype ({logits.dtype}), got {got.dtype}"
    gf = got.float()
    if ((gf >= 0) & (gf <= 1)).all() and torch.allclose(gf.sum(-1), torch.ones(1), atol=1e-3):
        return "return the filtered *logits* (removed ones -inf), not probabilities"
    if (got.float() == 0).any() and not (logits.float() == 0).any() and kept_g.all():
        return "set removed logits to -inf (masked_fill(remove, float('-inf'))), not to 0: exp(0) = 1 is a real weight"
    if (kept_g.sum(-1) == 0).any():
        return "keep at least one token per row (the most likely one), whatever top_p is"
    if (kept_g.sum(-1) < kept_w.sum(-1)).any():
        return ("you keep one token too few: keep the token that makes the running sum cross top_p too. "
                "Remove a token only if the mass of the tokens *more likely than it* already reaches top_p "
                "(or, sorting ascending, if the cumulative mass up to it is <= 1 - top_p)")
    if (kept_g & ~kept_w).any() and (~kept_g & kept_w).any():
        return ("you keep the wrong tokens: sort by probability descending (the most likely first) and "
                "scatter the decision back to the original token order")
    if (kept_g.sum(-1) > kept_w.sum(-1)).any():
        return ("you keep too many tokens: compare cumulative *probabilities* (softmax first), and stop at "
                "the first token whose running sum reaches top_p")
    return "kept tokens must keep their logits unchanged; only the removed ones become -inf"


def check_top_p_filter(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(logits, top_p) -> filtered logits`` against the course's nucleus filter.

    Hidden cases: the token that crosses ``top_p`` (kept), ``top_p`` hit exactly, ``top_p = 1``,
    a tiny ``top_p`` (one token kept), a batch, V = 1, float16 logits.
    """
    report = CheckReport(_TOP_P)
    for case, logits, top_p in _top_p_cases():
        want = top_p_filter(logits, top_p)
        got = call(_TOP_P, case, fn, logits.clone(), top_p)
        if not isinstance(got, torch.Tensor):
            raise ExerciseFailure(_TOP_P, case, f"expected a torch.Tensor, got {type(got).__name__}",
                                  "return logits.masked_fill(remove, float('-inf'))")
        expect_shape(_TOP_P, case, "filtered logits", got, want.shape,
                     "return one logit per token: the input's shape (..., V)")
        same_kept = torch.equal(torch.isfinite(got), torch.isfinite(want))
        if got.dtype != want.dtype or not same_kept or not close(got[torch.isfinite(want)].float(),
                                                                 want[torch.isfinite(want)].float()):
            raise ExerciseFailure(_TOP_P, case, "your filter keeps a different set of tokens or changes "
                                  "the kept logits", _top_p_hint(got, want, logits, top_p))
        report.cases.append(case)
    return passed(report, verbose)


def _kv_steps():
    """(case, layer_idx, T_new) in the order a model writes them: prefill, then decode steps."""
    return [("prefill: 5 prompt positions into an empty cache, layer 0", 0, 5),
            ("prefill, layer 1 (same length, another layer's buffer)", 1, 5),
            ("decode step: T_new = 1 after 5 stored positions", 0, 1),
            ("decode step, layer 1", 1, 1),
            ("fill the cache exactly (2 positions to reach max_length = 8)", 0, 2)]


def _kv_hint(got_k: torch.Tensor, cache: KVCache, k: torch.Tensor, start: int) -> str:
    end = start + k.shape[-2]
    if tuple(got_k.shape) == tuple(k.shape):
        return "return every stored position (buffer[:, :, :length + T_new]), not only the new keys"
    if got_k.shape[-2] == cache.max_length and end < cache.max_length:
        return "slice the buffer up to length + T_new: the positions after it are empty (zeros)"
    if start > 0 and close(cache.keys[0][:, :, :k.shape[-2]], k):
        return "write at positions length .. length + T_new - 1, after the stored ones, not at 0"
    return "buffer[:, :, start:end] = k with start = cache.length and end = start + k.shape[-2]"


def check_kv_cache_update(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(cache, layer_idx, k, v) -> (keys, values)`` against ``KVCache.update``.

    Hidden cases: a 5-position prefill of layers 0 and 1, decode steps with T_new = 1, filling the
    cache exactly, and a write past ``max_length`` (must raise ``ValueError``); ``cache.length`` must
    not change inside the function.
    """
    report = CheckReport(_KV)
    g = torch.Generator().manual_seed(6)
    shape = dict(num_layers=2, batch_size=2, num_heads=3, max_length=8, head_dim=4)
    ours, theirs = KVCache(**shape), KVCache(**shape)
    steps = _kv_steps()
    for i, (case, layer, t_new) in enumerate(steps):
        k = torch.randn(2, 3, t_new, 4, generator=g)
        v = torch.randn(2, 3, t_new, 4, generator=g)
        want_k, want_v = ours.update(layer, k, v)
        start = theirs.length
        got = call(_KV, case, fn, theirs, layer, k.clone(), v.clone())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseFailure(_KV, case, f"expected a tuple (keys, values), got {type(got).__name__}",
                                  "return the keys and the values stored so far, in that order")
        if theirs.length != start:
            raise ExerciseFailure(_KV, case, f"cache.length changed from {start} to {theirs.length}",
                                  "update must not advance the cache: every layer writes at the same "
                                  "positions, and the model calls cache.advance(T_new) once, after the last layer")
        for name, got_x, want_x in (("keys", got[0], want_k), ("values", got[1], want_v)):
            hint = _kv_hint(got_x, theirs, k, start) if name == "keys" else \
                "store v in cache.values[layer_idx] exactly as k in cache.keys[layer_idx]"
            expect_shape(_KV, case, name, got_x, want_x.shape, hint)
            expect_close(_KV, case, name, got_x, want_x, hint)
        if not close(theirs.keys[layer], ours.keys[layer]):
            raise ExerciseFailure(_KV, case, "the cache's buffer does not hold the new keys",
                                  "write into cache.keys[layer_idx] in place (an assignment to a slice), "
                                  "so the next step can read them back")
        report.cases.append(case)
        if i in (1, 3):                                   # all layers written: the model advances
            ours.advance(t_new)
            theirs.advance(t_new)
    ours.advance(2)
    theirs.advance(2)
    case = "a write past max_length (cache full) must raise ValueError"
    k = torch.randn(2, 3, 1, 4, generator=g)
    full = copy.deepcopy(theirs)
    try:
        fn(full, 0, k, k.clone())
    except NotImplementedError:
        raise ExerciseFailure(_KV, None, "not implemented yet", "replace the raise NotImplementedError") from None
    except ValueError:
        report.cases.append(case)
    except Exception as err:  # noqa: BLE001
        raise ExerciseFailure(_KV, case, f"raised {type(err).__name__}: {err}",
                              "check `end > cache.max_length` first and raise ValueError with a message "
                              "saying the cache is full") from None
    else:
        raise ExerciseFailure(_KV, case, "no error was raised",
                              "torch slicing past the end silently writes nothing; check end > cache.max_length "
                              "and raise ValueError saying the cache is full")
    return passed(report, verbose)
