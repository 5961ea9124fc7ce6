r"""Chapter 5 checkers: a LoRA layer and BERT's 80/10/10 masking.

* :func:`check_lora_linear` -- ``fn(base_layer, r, lora_alpha) -> module``: a class (or factory)
  like :class:`course_lib.finetuning.lora.LoraLinear`, holding the frozen ``base_layer`` and two
  ``nn.Linear`` without bias, ``lora_A`` (d_in -> r) and ``lora_B`` (r -> d_out), whose forward is
  :math:`h = W x + b + \frac{\alpha}{r} B A x`, with ``B`` zero at the start.
* :func:`check_mlm_mask` -- ``fn(input_ids, *, vocab_size, mask_token_id, special_ids,
  mlm_probability=0.15, generator=None) -> (inputs, labels)`` with the signature of
  :func:`course_lib.pretraining.masking.mask_tokens`. Random draws differ between implementations,
  so the checker tests the *statistics* on 64 x 512 tokens: a fraction p of the non-special tokens is
  chosen; of those, 80 % become ``[MASK]``, 10 % a random token, 10 % stay; labels are the original
  id at chosen positions and -100 elsewhere.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..finetuning.lora import LoraLinear
from ..pretraining.masking import IGNORE_INDEX, mask_tokens, masking_statistics
from .core import CheckReport, ExerciseFailure, call, expect_close, expect_shape, passed

_LORA = "lora_linear"
_MLM = "mlm_mask"


def _lora_weights(layer, name: str, case: str) -> torch.Tensor:
    sub = getattr(layer, name, None)
    w = getattr(sub, "weight", None)
    if not isinstance(w, torch.Tensor):
        raise ExerciseFailure(_LORA, case, f"the layer has no {name}.weight",
                              "store the branch as self.lora_A = nn.Linear(d_in, r, bias=False) and "
                              "self.lora_B = nn.Linear(r, d_out, bias=False) (peft's names)")
    return w


def check_lora_linear(fn, verbose: bool = True) -> CheckReport:
    """Check a LoRA layer ``fn(base_layer, r, lora_alpha)`` against the course's ``LoraLinear``.

    Hidden cases: the output at initialisation equals the base layer's (B = 0); the base weights are
    frozen and only r (d_in + d_out) numbers train; with random A and B, outputs and the gradients of
    A and B equal ours for a (B, T, d_in) input, for T = 1, for an empty batch and in float64.
    """
    report = CheckReport(_LORA)
    torch.manual_seed(7)
    base = nn.Linear(6, 5)
    case = "initialisation: B = 0, so the layer equals the pretrained one"
    layer = call(_LORA, case, fn, base, 2, 4.0)
    x = torch.randn(3, 4, 6)
    a_w, b_w = _lora_weights(layer, "lora_A", case), _lora_weights(layer, "lora_B", case)
    expect_shape(_LORA, case, "lora_A.weight", a_w, (2, 6), "lora_A maps d_in -> r: its weight is (r, d_in)")
    expect_shape(_LORA, case, "lora_B.weight", b_w, (5, 2), "lora_B maps r -> d_out: its weight is (d_out, r)")
    with torch.no_grad():
        expect_close(_LORA, case, "output", call(_LORA, case, layer, x), base(x),
                     "initialise lora_B to zero (nn.init.zeros_) so that B A = 0 and training starts "
                     "from the pretrained model; lora_A is random (Kaiming-uniform)")
    report.cases.append(case)
    case = "frozen base layer, r (d_in + d_out) trainable numbers"
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    if base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        raise ExerciseFailure(_LORA, case, "the base layer's weight or bias still requires grad",
                              "freeze it: for p in base_layer.parameters(): p.requires_grad_(False)")
    if trainable != 2 * (6 + 5):
        raise ExerciseFailure(_LORA, case, f"{trainable} trainable numbers, expected r (d_in + d_out) = 22",
                              "only lora_A and lora_B train, and neither has a bias")
    report.cases.append(case)
    for case, shape, dtype in [("random A and B, input (3, 4, d_in)", (3, 4, 6), torch.float32),
                               ("T = 1", (2, 1, 6), torch.float32),
                               ("empty batch (0, d_in)", (0, 6), torch.float32),
                               ("float64 layer", (3, 6), torch.float64)]:
        torch.manual_seed(8)
        base_ = nn.Linear(6, 5).to(dtype)
        ours = LoraLinear(nn.Linear(6, 5).to(dtype), r=2, lora_alpha=4.0)
        ours.base_layer.load_state_dict(base_.state_dict())
        theirs = call(_LORA, case, fn, base_, 2, 4.0)
        a_w, b_w = _lora_weights(theirs, "lora_A", case), _lora_weights(theirs, "lora_B", case)
        with torch.no_grad():
            ours.lora_A.weight.normal_()
            ours.lora_B.weight.normal_()
            a_w.copy_(ours.lora_A.weight)
            b_w.copy_(ours.lora_B.weight)
        x = torch.randn(*shape, dtype=dtype)
        want, got = ours(x), call(_LORA, case, theirs, x)
        scale_hint = ("scale the branch by lora_alpha / r (here 4 / 2 = 2): h = W x + b + (alpha / r) B A x"
                      if got.shape == want.shape and x.numel() and torch.allclose(
                          (got - base_(x)).detach(), (want - base_(x)).detach() / 4, atol=1e-5)
                      else "h = base_layer(x) + lora_B(lora_A(x)) * (lora_alpha / r)")
        expect_close(_LORA, case, "output", got, want, scale_hint, rtol=1e-5, atol=1e-6)
        if x.numel():
            want.sum().backward()
            got.sum().backward()
            for name, g, w in (("grad of lora_A", a_w.grad, ours.lora_A.weight.grad),
                               ("grad of lora_B", b_w.grad, ours.lora_B.weight.grad)):
                if g is None:
                    raise ExerciseFailure(_LORA, case, f"no {name}", "use lora_A/lora_B in forward, without detach")
                expect_close(_LORA, case, name, g, w, scale_hint, rtol=1e-5, atol=1e-6)
        report.cases.append(case)
    return passed(report, verbose)


def _mlm_hint(stats: dict, p: float) -> str:
    if stats["special_chosen"]:
        return ("special tokens ([CLS], [SEP], [PAD]) must never be chosen: set their probability to 0 "
                "(special_tokens_mask) before the Bernoulli draw")
    if abs(stats["random"] - 0.1 * (1 - 0.8) / 1) < 0.01 and stats["random"] < 0.05:
        return ("only ~2 % of the chosen tokens became random: among the chosen tokens *not* masked, "
                "pick random with probability r / (1 - m) = 0.1 / 0.2 = 0.5, so that 10 % overall are random")
    if abs(stats["chosen"] - p) > 0.02:
        return (f"you chose {stats['chosen']:.1%} of the non-special tokens, expected {p:.0%}: draw "
                "chosen ~ Bernoulli(mlm_probability) once per token")
    return "of the chosen tokens: 80 % -> [MASK], 10 % -> a random id, 10 % unchanged"


def check_mlm_mask(fn, verbose: bool = True) -> CheckReport:
    """Check ``fn(input_ids, *, vocab_size, mask_token_id, special_ids, mlm_probability, generator)`` statistically.

    Hidden cases: the 15 % / 80-10-10 fractions within 5 standard errors on 64 x 512 tokens; specials
    never chosen; labels -100 off the chosen positions and the original id on them; the input left
    unmodified; ``mlm_probability = 0`` chooses nothing; an empty batch gives empty outputs.
    """
    report = CheckReport(_MLM)
    V, mask_id, specials = 1000, 3, [0, 1, 2, 3]                     # [PAD], [CLS], [SEP], [MASK]
    g = torch.Generator().manual_seed(9)
    ids = torch.randint(4, V, (64, 512), generator=g)
    ids[:, 0], ids[:, -1], ids[:8, 400:] = 1, 2, 0                    # [CLS] ... [SEP], some padding
    kw = dict(vocab_size=V, mask_token_id=mask_id, special_ids=specials)
    case = "64 x 512 tokens, mlm_probability = 0.15"
    original = ids.clone()
    out = call(_MLM, case, fn, ids, **kw, mlm_probability=0.15, generator=torch.Generator().manual_seed(1))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ExerciseFailure(_MLM, case, f"expected (inputs, labels), got {type(out).__name__}",
                              "return the corrupted ids and the labels")
    inputs, labels = out
    if not torch.equal(ids, original):
        raise ExerciseFailure(_MLM, case, "your function modified input_ids in place",
                              "work on copies: inputs, labels = input_ids.clone(), input_ids.clone()")
    expect_shape(_MLM, case, "inputs", inputs, ids.shape, "inputs keep the shape (B, T)")
    expect_shape(_MLM, case, "labels", labels, ids.shape, "labels keep the shape (B, T)")
    chosen = labels != IGNORE_INDEX
    if not torch.equal(labels[chosen], ids[chosen]):
        raise ExerciseFailure(_MLM, case, "labels at chosen positions are not the original ids",
                              "labels = original ids where chosen, -100 elsewhere (clone before corrupting)")
    if not torch.equal(inputs[~chosen], ids[~chosen]):
        raise ExerciseFailure(_MLM, case, "tokens that were not chosen were changed",
                              "apply [MASK] and random replacements only where chosen (the label is not -100); "
                              "with labels=-100 on a token that changed, the model never learns to fix it")
    stats = masking_statistics(ids, inputs, labels, specials, mask_id)
    n_free = int((~torch.isin(ids, torch.tensor(specials))).sum())
    n_chosen = max(int(chosen.sum()), 1)
    checks = [("chosen", 0.15, n_free), ("mask", 0.8, n_chosen), ("random", 0.1, n_chosen), ("kept", 0.1, n_chosen)]
    for key, p, n in checks:
        se = math.sqrt(p * (1 - p) / n)
        if stats["special_chosen"] or abs(stats[key] - p) > 5 * se + 1.0 / V:
            raise ExerciseFailure(_MLM, case, f"fraction '{key}' is {stats[key]:.3f}, expected {p:.2f} "
                                  f"(± {5 * se:.3f})", _mlm_hint(stats, 0.15))
    report.cases.append(case + ": 15 % chosen, 80/10/10, specials never chosen, labels, input untouched")
    case = "mlm_probability = 0 chooses nothing"
    inputs, labels = call(_MLM, case, fn, ids, **kw, mlm_probability=0.0, generator=torch.Generator().manual_seed(2))
    if (labels != IGNORE_INDEX).any() or not torch.equal(inputs, ids):
        raise ExerciseFailure(_MLM, case, "tokens were chosen or changed",
                              "use mlm_probability as the Bernoulli probability, not a constant 0.15")
    report.cases.append(case)
    case = "empty batch (0, T)"
    empty = torch.zeros(0, 16, dtype=torch.long)
    want = mask_tokens(empty, **kw)
    got = call(_MLM, case, fn, empty, **kw, mlm_probability=0.15, generator=torch.Generator().manual_seed(3))
    for name, a, b in zip(("inputs", "labels"), got, want):
        expect_shape(_MLM, case, name, a, b.shape, "an empty batch gives empty (0, T) outputs")
    report.cases.append(case)
    return passed(report, verbose)
