"""Checkers of chapters 2 and 3: the course's code passes, typical mistakes fail with their hint."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.attention import numpy_attention as npa
from course_lib.embeddings.vocab import Vocab
from course_lib.embeddings.word2vec_numpy import sgns_batch, sigmoid
from course_lib.exercises import (check_attention_backward, check_keep_probs,
                                  check_masked_softmax, check_negative_sampling_loss)
from course_lib.exercises.core import expect_failure as fails_with


def course_keep(counts, sample):
    return Vocab([f"w{i}" for i in range(len(counts))], counts).keep_probs(sample)


@pytest.mark.parametrize("checker, fn", [(check_keep_probs, course_keep),
                                         (check_negative_sampling_loss, sgns_batch),
                                         (check_masked_softmax, npa._masked_softmax),
                                         (check_attention_backward, npa.scaled_dot_product_attention_backward)])
def test_course_implementation_passes(checker, fn, capsys):
    report = checker(fn)
    assert len(report.cases) >= 5
    out = capsys.readouterr().out
    assert f"all {len(report.cases)} checks passed" in out and report.cases[0] in out


@pytest.mark.parametrize("checker, name", [(check_keep_probs, "keep_probs"),
                                           (check_negative_sampling_loss, "negative_sampling_loss"),
                                           (check_masked_softmax, "masked_softmax"),
                                           (check_attention_backward, "attention_backward")])
def test_stub_is_not_implemented_yet(checker, name):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise 1")
    fails_with(checker, stub, "not implemented yet", f"[{name}]")


def test_crash_names_case_and_exception():
    def broken(scores, mask):
        return np.exp(scores) / np.ones((7, 7)).sum(axis=-1)
    err = fails_with(check_masked_softmax, broken, "raised ValueError", "on case 'no mask, (3, 5) scores'", "at ")
    assert err.case == "no mask, (3, 5) scores"


# --------------------------------------------------------------------------- keep_probs

def test_keep_probs_unclipped():
    def no_clip(counts, sample):
        c = counts.astype(float)
        thr = sample * c.sum()
        return (np.sqrt(c / thr) + 1) * thr / c if sample else np.ones_like(c)
    fails_with(check_keep_probs, no_clip, "cannot exceed 1", "np.minimum")


def test_keep_probs_paper_formula():
    def paper(counts, sample):
        f = counts / counts.sum()
        return np.clip(np.sqrt(sample / f), 0, 1) if sample else np.ones(len(counts))
    fails_with(check_keep_probs, paper, "paper's discard rule")


def test_keep_probs_sample_zero():
    def no_zero(counts, sample):
        c = counts.astype(float)
        thr = sample * c.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.minimum((np.sqrt(c / thr) + 1) * thr / c, 1.0)
    fails_with(check_keep_probs, no_zero, "sample = 0 turns sub-sampling off", "return ones")


# --------------------------------------------------------------------------- negative sampling

def _sgns_parts(w_in, w_out, centers, contexts, negatives):
    targets = np.concatenate([contexts[:, None], negatives], axis=1)
    labels = np.zeros(targets.shape)
    labels[:, 0] = 1
    v, u = w_in[centers], w_out[targets]
    s = np.einsum("bkd,bd->bk", u, v)
    return targets, labels, v, u, s


def test_sgns_naive_log_overflows():
    def naive(*args):
        targets, labels, v, u, s = _sgns_parts(*args)
        with np.errstate(all="ignore"):
            sig = 1 / (1 + np.exp(-s))
            loss = float(-(labels * np.log(sig) + (1 - labels) * np.log(1 - sig)).sum())
        g = labels - sig
        return loss, -np.einsum("bk,bkd->bd", g, u), targets, -g[:, :, None] * v[:, None, :]
    fails_with(check_negative_sampling_loss, naive, "overflow", "logaddexp", "large scores")


def test_sgns_mean_instead_of_sum():
    def mean(*args):
        loss, gv, t, gu = sgns_batch(*args)
        return loss / max(len(args[2]), 1), gv, t, gu
    fails_with(check_negative_sampling_loss, mean, "sums the loss over the batch")


def test_sgns_gradient_sign():
    def flipped(*args):
        loss, gv, t, gu = sgns_batch(*args)
        return loss, -gv, t, gu
    fails_with(check_negative_sampling_loss, flipped, "grad_v has the wrong sign")


def test_sgns_swapped_labels():
    def swapped(*args):
        targets, labels, v, u, s = _sgns_parts(*args)
        sign = 1 - 2 * labels                    # context gets +, negatives - : swapped
        g = (1 - labels) - sigmoid(s)
        return float(np.logaddexp(0, -sign * s).sum()), -np.einsum("bk,bkd->bd", g, u), targets, \
            -g[:, :, None] * v[:, None, :]
    fails_with(check_negative_sampling_loss, swapped, "signs are swapped")


# --------------------------------------------------------------------------- masked softmax

def test_softmax_nan_on_fully_masked_row():
    def nan_row(scores, mask):
        x = scores if mask is None else np.where(mask, scores, -np.inf)
        with np.errstate(invalid="ignore"):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
    err = fails_with(check_masked_softmax, nan_row, "NaN for a fully masked row",
                     "exp(-inf - max)", "fully masked row")
    assert err.case.startswith("fully masked row")


def test_softmax_uniform_fully_masked_row():
    def uniform(scores, mask):
        x = scores if mask is None else np.where(mask, scores, -1e9)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    fails_with(check_masked_softmax, uniform, "all-zero weights")


def test_softmax_no_max_subtraction():
    def overflow(scores, mask):
        with np.errstate(all="ignore"):
            e = np.exp(scores) * (1 if mask is None else np.broadcast_to(mask, scores.shape))
            d = e.sum(axis=-1, keepdims=True)
            return e / np.where(d > 0, d, 1)
    fails_with(check_masked_softmax, overflow, "overflow", "Subtract each row's maximum", "large scores")


def test_softmax_ignores_mask():
    def no_mask(scores, mask):
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    fails_with(check_masked_softmax, no_mask, "mass to masked keys", "causal mask")


def test_softmax_wrong_axis():
    def columns(scores, mask):
        e = np.exp(scores - scores.max(axis=-2, keepdims=True))
        return e / e.sum(axis=-2, keepdims=True)
    fails_with(check_masked_softmax, columns, "axis=-1")


def test_softmax_upcasts_float16():
    def upcast(scores, mask):
        return npa._masked_softmax(scores.astype(np.float64), mask)
    fails_with(check_masked_softmax, upcast, "float16 scores gave float64", "keep the input's dtype")


# --------------------------------------------------------------------------- attention backward

def test_backward_missing_scale():
    def no_scale(grad_out, q, k, v, weights, scale=None):
        s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
        dq, dk, dv = npa.scaled_dot_product_attention_backward(grad_out, q, k, v, weights, scale=scale)
        return dq / s, dk / s, dv
    fails_with(check_attention_backward, no_scale, "off by the scale factor", "dq")


def test_backward_missing_rowsum():
    def no_rowsum(grad_out, q, k, v, weights, scale=None):
        s = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
        d_s = weights * (grad_out @ v.swapaxes(-1, -2))
        return s * d_s @ k, s * d_s.swapaxes(-1, -2) @ q, weights.swapaxes(-1, -2) @ grad_out
    fails_with(check_attention_backward, no_rowsum, "correction term", "rowsum")


def test_backward_dv_transposed_wrong():
    def bad_dv(grad_out, q, k, v, weights, scale=None):
        dq, dk, _ = npa.scaled_dot_product_attention_backward(grad_out, q, k, v, weights, scale=scale)
        return dq, dk, np.zeros_like(v)
    fails_with(check_attention_backward, bad_dv, "dV = P^T dO")
