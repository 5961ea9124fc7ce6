"""Checkers of chapters 4 and 5: the course's code passes, typical mistakes fail with their hint."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.exercises import (EXERCISES, check_kv_cache_update, check_lora_linear,
                                  check_mlm_mask, check_top_p_filter)
from course_lib.exercises.core import expect_failure as fails_with
from course_lib.finetuning.lora import LoraLinear
from course_lib.pretraining.masking import IGNORE_INDEX, mask_tokens, special_tokens_mask
from course_lib.transformer.decoding import top_p_filter


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def course_kv(cache, layer_idx, k, v):
    return cache.update(layer_idx, k, v)


@pytest.mark.parametrize("checker, fn", [(check_top_p_filter, top_p_filter), (check_kv_cache_update, course_kv),
                                         (check_lora_linear, LoraLinear), (check_mlm_mask, mask_tokens)])
def test_course_implementation_passes(checker, fn, capsys):
    report = checker(fn)
    assert len(report.cases) >= 3
    assert f"all {len(report.cases)} checks passed" in capsys.readouterr().out


def test_registry_two_per_chapter():
    per_chapter = {}
    for ex in EXERCISES:
        per_chapter.setdefault(ex.chapter, []).append(ex.name)
        assert ex.checker.__name__ == f"check_{ex.name}"
    assert all(len(per_chapter.get(ch, [])) >= 2 for ch in (1, 2, 3, 4, 5, 6)), per_chapter


@pytest.mark.parametrize("checker", [check_top_p_filter, check_kv_cache_update, check_lora_linear, check_mlm_mask])
def test_stub_is_not_implemented_yet(checker):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise 3")
    fails_with(checker, stub, "not implemented yet", f"[{checker.__name__[6:]}]")


# --------------------------------------------------------------------------- top-p

def _remove_mask(logits, top_p, inclusive):
    probs, order = logits.float().softmax(-1).sort(-1, descending=True)
    before = probs.cumsum(-1) - probs                     # mass of the more likely tokens
    remove = before >= top_p if inclusive else probs.cumsum(-1) > top_p
    remove[..., 0] = False
    return remove.scatter(-1, order, remove)


def test_top_p_one_too_few():
    def strict(logits, top_p):                            # drops the token that crosses p
        return logits.masked_fill(_remove_mask(logits, top_p, inclusive=False), float("-inf"))
    fails_with(check_top_p_filter, strict, "one token too few", "crosses")


def test_top_p_zero_instead_of_minus_inf():
    def zeros(logits, top_p):
        return logits.masked_fill(_remove_mask(logits, top_p, inclusive=True), 0.0)
    fails_with(check_top_p_filter, zeros, "not to 0")


def test_top_p_returns_probabilities():
    def probs(logits, top_p):
        return top_p_filter(logits, top_p).softmax(-1).to(logits.dtype)
    fails_with(check_top_p_filter, probs, "not probabilities")


def test_top_p_not_scattered_back():
    def unsorted(logits, top_p):                          # decides in sorted order, applies unsorted
        probs, _ = logits.float().softmax(-1).sort(-1, descending=True)
        remove = probs.cumsum(-1) - probs >= top_p
        remove[..., 0] = False
        return logits.masked_fill(remove, float("-inf"))
    err = fails_with(check_top_p_filter, unsorted, "wrong tokens", "scatter the decision back")
    assert err.case.startswith("top_p exactly reached")


def test_top_p_float16_upcast():
    def upcast(logits, top_p):
        return top_p_filter(logits.float(), top_p)
    err = fails_with(check_top_p_filter, upcast, "dtype")
    assert "float16" in err.case


# --------------------------------------------------------------------------- KV cache

def test_kv_returns_only_new():
    def only_new(cache, layer_idx, k, v):
        cache.update(layer_idx, k, v)
        return k, v
    fails_with(check_kv_cache_update, only_new, "every stored position")


def test_kv_returns_whole_buffer():
    def whole(cache, layer_idx, k, v):
        cache.update(layer_idx, k, v)
        return cache.keys[layer_idx], cache.values[layer_idx]
    fails_with(check_kv_cache_update, whole, "slice the buffer up to length + T_new")


def test_kv_writes_at_zero():
    def at_zero(cache, layer_idx, k, v):
        t = k.shape[-2]
        cache.keys[layer_idx][:, :, :t] = k
        cache.values[layer_idx][:, :, :t] = v
        end = cache.length + t
        return cache.keys[layer_idx][:, :, :end], cache.values[layer_idx][:, :, :end]
    fails_with(check_kv_cache_update, at_zero, "not at 0", "decode step")


def test_kv_advances_length():
    def advances(cache, layer_idx, k, v):
        out = cache.update(layer_idx, k, v)
        cache.advance(k.shape[-2])
        return out
    fails_with(check_kv_cache_update, advances, "cache.length changed", "advance")


def test_kv_no_overflow_check():
    def unchecked(cache, layer_idx, k, v):
        start, end = cache.length, cache.length + k.shape[-2]
        cache.keys[layer_idx][:, :, start:end] = k[:, :, :max(0, cache.max_length - start)]
        cache.values[layer_idx][:, :, start:end] = v[:, :, :max(0, cache.max_length - start)]
        return cache.keys[layer_idx][:, :, :end], cache.values[layer_idx][:, :, :end]
    fails_with(check_kv_cache_update, unchecked, "must raise ValueError", "no error was raised")


# --------------------------------------------------------------------------- LoRA

class _Lora(nn.Module):
    """A learner's LoRA layer with switchable mistakes."""

    def __init__(self, base_layer, r, lora_alpha, scale=None, b_zero=True, freeze=True):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
        if b_zero:
            nn.init.zeros_(self.lora_B.weight)
        self.lora_A.to(base_layer.weight.dtype)
        self.lora_B.to(base_layer.weight.dtype)
        for p in base_layer.parameters():
            p.requires_grad_(not freeze)
        self.scaling = lora_alpha / r if scale is None else scale(lora_alpha, r)

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def test_lora_reference_like_learner_passes():
    check_lora_linear(_Lora, verbose=False)


def test_lora_scale_inverted():
    fails_with(check_lora_linear, lambda b, r, a: _Lora(b, r, a, scale=lambda a, r: r / a), "lora_alpha / r")


def test_lora_b_not_zero():
    fails_with(check_lora_linear, lambda b, r, a: _Lora(b, r, a, b_zero=False), "lora_B to zero", "initialisation")


def test_lora_base_not_frozen():
    fails_with(check_lora_linear, lambda b, r, a: _Lora(b, r, a, freeze=False), "freeze it")


# --------------------------------------------------------------------------- MLM masking

def _mlm(input_ids, *, vocab_size, mask_token_id, special_ids, mlm_probability=0.15, generator=None,
         mistake=""):
    inputs, labels = input_ids.clone(), input_ids.clone()
    prob = torch.full(input_ids.shape, float(mlm_probability))
    if mistake != "specials":
        prob.masked_fill_(special_tokens_mask(input_ids, special_ids), 0.0)
    chosen = torch.bernoulli(prob, generator=generator).bool()
    labels[~chosen] = IGNORE_INDEX
    u = torch.rand(input_ids.shape, generator=generator)
    where = torch.ones_like(chosen) if mistake == "all" else chosen
    to_mask = (u < 0.8) & where
    p_random = 0.1 if mistake == "random" else 0.5
    to_random = (torch.rand(input_ids.shape, generator=generator) < p_random) & where & ~to_mask
    inputs[to_mask] = mask_token_id
    inputs[to_random] = torch.randint(vocab_size, input_ids.shape, generator=generator)[to_random]
    return inputs, labels


def test_mlm_learner_version_passes():
    check_mlm_mask(_mlm, verbose=False)


def test_mlm_random_share_too_small():
    fails_with(check_mlm_mask, lambda *a, **k: _mlm(*a, **k, mistake="random"), "r / (1 - m)", "'random'")


def test_mlm_specials_chosen():
    fails_with(check_mlm_mask, lambda *a, **k: _mlm(*a, **k, mistake="specials"), "special tokens")


def test_mlm_corrupts_unchosen():
    fails_with(check_mlm_mask, lambda *a, **k: _mlm(*a, **k, mistake="all"), "not chosen were changed")


def test_mlm_in_place():
    def in_place(input_ids, **kw):
        inputs, labels = mask_tokens(input_ids, **kw)
        input_ids.copy_(inputs)
        return inputs, labels
    fails_with(check_mlm_mask, in_place, "in place", "clone")


def test_mlm_tolerance_is_tight():
    """The 5-standard-error band on 64 x 512 tokens is narrow enough to catch a 70/20/10 split."""
    n_chosen = 0.15 * 64 * 510
    assert 5 * math.sqrt(0.8 * 0.2 / n_chosen) < 0.1
