"""Online softmax and tiled attention equal the naive versions; memory is O(T)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.attention import causal_mask, padding_mask, tiled
from course_lib.attention import numpy_attention as npa
from course_lib.attention import softmax as sm
from course_lib.attention import torch_attention as tta


def test_online_softmax(rng):
    x = rng.normal(size=37) * 20
    np.testing.assert_allclose(tiled.online_softmax(x, block_size=5), sm.softmax(x), rtol=1e-12)


@pytest.mark.parametrize("block_size", [1, 4, 16, 64])
@pytest.mark.parametrize("case", ["none", "padding", "causal", "both", "cache"])
def test_tiled_numpy_equals_naive(rng, block_size, case):
    T_q = 3 if case == "cache" else 19
    q = rng.normal(size=(2, 2, T_q, 8))
    k, v = rng.normal(size=(2, 2, 19, 8)), rng.normal(size=(2, 2, 19, 5))
    mask, causal = None, False
    if case in ("padding", "both"):
        mask = padding_mask([19, 6], 19, xp="numpy")
    if case in ("causal", "both", "cache"):
        causal = True
    full = causal_mask(T_q, 19, xp="numpy") if causal else None
    if mask is not None:
        full = mask if full is None else (full & mask)
    ref, _ = npa.scaled_dot_product_attention(q, k, v, full)
    ours = tiled.tiled_attention(q, k, v, mask=mask, causal=causal, block_size=block_size)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_tiled_torch_equals_naive_values_and_gradients(device):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 70, 16, device=device, requires_grad=True) for _ in range(3))
    mask = padding_mask([70, 33], 70, device=device)
    ref, _ = tta.scaled_dot_product_attention(q, k, v, mask & causal_mask(70, device=device))
    ours = tiled.tiled_attention_torch(q, k, v, mask=mask, causal=True, block_size=16)
    assert (ours - ref).abs().max().item() <= 1e-5
    g_ref = torch.autograd.grad(ref.sum(), (q, k, v))
    g_ours = torch.autograd.grad(ours.sum(), (q, k, v))
    for a, b in zip(g_ours, g_ref):
        assert (a - b).abs().max().item() <= 1e-4


def test_tiled_fully_masked_rows_are_zero(rng):
    q, k, v = rng.normal(size=(1, 4, 4)), rng.normal(size=(1, 4, 4)), rng.normal(size=(1, 4, 4))
    mask = np.ones((4, 4), bool)
    mask[2] = False
    out = tiled.tiled_attention(q, k, v, mask=mask, block_size=2)
    assert np.isfinite(out).all() and (out[0, 2] == 0).all()
    out_t = tiled.tiled_attention_torch(*(torch.tensor(x) for x in (q, k, v)), mask=torch.tensor(mask),
                                        block_size=2)
    assert torch.isfinite(out_t).all() and (out_t[0, 2] == 0).all()


def test_peak_memory_naive_quadratic_tiled_linear(rng):
    def peaks(T):
        q, k, v = (rng.normal(size=(T, 32)) for _ in range(3))
        naive, _ = tiled.peak_memory_numpy(npa.scaled_dot_product_attention, q, k, v)
        tiles, _ = tiled.peak_memory_numpy(tiled.tiled_attention, q, k, v, block_size=64)
        return naive, tiles
    n1, t1 = peaks(512)
    n2, t2 = peaks(1024)
    assert 3.5 < n2 / n1 < 4.5          # (T, T) scores: x4 when T doubles
    assert t2 / t1 < 2.5                # blocks of (64, 64): grows with the output only
    assert n2 > 8 * t2


def test_tiled_accepts_a_one_dimensional_key_mask(rng):
    q, k, v = (rng.normal(size=(5, 4)) for _ in range(3))
    mask = np.array([1, 1, 1, 0, 0], bool)
    ref, _ = npa.scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(tiled.tiled_attention(q, k, v, mask, block_size=2), ref, atol=1e-12)
    ours_t = tiled.tiled_attention_torch(*(torch.tensor(x) for x in (q, k, v)), torch.tensor(mask),
                                         block_size=2)
    np.testing.assert_allclose(ours_t.numpy(), ref, atol=1e-12)
