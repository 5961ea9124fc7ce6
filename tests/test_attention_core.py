"""Scaled dot-product and multi-head attention: gradients, masks, parity with PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import causal_mask, padding_mask
from course_lib.attention import numpy_attention as npa
from course_lib.attention import torch_attention as tta


def _qkv(rng, B=2, H=3, T_q=5, T_k=7, d_k=4, d_v=6):
    return (rng.normal(size=(B, H, T_q, d_k)), rng.normal(size=(B, H, T_k, d_k)),
            rng.normal(size=(B, H, T_k, d_v)))


def test_weights_are_distributions_and_output_shape(rng):
    q, k, v = _qkv(rng)
    out, w = npa.scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 6) and w.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-14)
    assert (w >= 0).all()


@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_finite_differences(rng, masked):
    q, k, v = _qkv(rng, B=1, H=2, T_q=4, T_k=5, d_k=3, d_v=2)
    mask = None
    if masked:
        mask = causal_mask(4, 5, xp="numpy") & padding_mask([4], 5, xp="numpy")
    g = rng.normal(size=(1, 2, 4, 2))
    out, w = npa.scaled_dot_product_attention(q, k, v, mask)
    grads = npa.scaled_dot_product_attention_backward(g, q, k, v, w)

    def loss(q_, k_, v_):
        return float((npa.scaled_dot_product_attention(q_, k_, v_, mask)[0] * g).sum())

    eps = 1e-6
    for i, x in enumerate((q, k, v)):
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += eps
            xm[idx] -= eps
            args_p = [q, k, v]; args_p[i] = xp
            args_m = [q, k, v]; args_m[i] = xm
            numeric[idx] = (loss(*args_p) - loss(*args_m)) / (2 * eps)
        rel = np.linalg.norm(grads[i] - numeric) / max(np.linalg.norm(numeric), 1e-12)
        assert rel < 1e-6, f"gradient {'qkv'[i]} relative error {rel:.2e}"


def test_backward_matches_autograd_with_broadcast_kv(rng):
    q = rng.normal(size=(2, 3, 5, 4))
    k = rng.normal(size=(2, 1, 6, 4))           # shared by the 3 heads (broadcast)
    v = rng.normal(size=(2, 1, 6, 2))
    g = rng.normal(size=(2, 3, 5, 2))
    out, w = npa.scaled_dot_product_attention(q, k, v)
    dq, dk, dv = npa.scaled_dot_product_attention_backward(g, q, k, v, w)
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    tout, _ = tta.scaled_dot_product_attention(tq, tk, tv)
    tout.backward(torch.tensor(g))
    for ours, t in ((dq, tq), (dk, tk), (dv, tv)):
        assert ours.shape == t.shape
        np.testing.assert_allclose(ours, t.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-14)


def test_numpy_and_torch_agree_with_masks(rng, device):
    q, k, v = _qkv(rng, T_q=6, T_k=6)
    mask = causal_mask(6, xp="numpy") & padding_mask([6, 3], 6, xp="numpy")
    out_np, w_np = npa.scaled_dot_product_attention(q, k, v, mask)
    t = [torch.tensor(x, device=device) for x in (q, k, v)]
    out_t, w_t = tta.scaled_dot_product_attention(*t, torch.tensor(mask, device=device))
    np.testing.assert_allclose(out_t.cpu().numpy(), out_np, atol=1e-12)
    np.testing.assert_allclose(w_t.cpu().numpy(), w_np, atol=1e-12)
    assert (w_np[1, :, :, 3:] == 0).all()            # padded keys get no weight


def test_equals_sdpa_float32(rng, device):
    q, k, v = (torch.tensor(x, dtype=torch.float32, device=device) for x in _qkv(rng, T_q=9, T_k=9))
    for mask in (None, causal_mask(9, device=device),
                 padding_mask([9, 4], 9, device=device) & causal_mask(9, device=device)):
        ours, _ = tta.scaled_dot_product_attention(q, k, v, mask)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert (ours - ref).abs().max().item() <= 1e-5


def test_fully_masked_rows_give_zeros_not_nan(device):
    q = k = v = torch.randn(1, 1, 3, 4, device=device, requires_grad=True)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]],
                        device=device)
    out, w = tta.scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and (out[0, 0, 1] == 0).all() and (w[0, 0, 1] == 0).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    out_np, w_np = npa.scaled_dot_product_attention(
        *(x.detach().cpu().double().numpy() for x in (q, k, v)), mask.cpu().numpy())
    assert np.isfinite(out_np).all() and (out_np[0, 0, 1] == 0).all()


def test_multi_head_numpy_equals_torch(rng):
    torch.manual_seed(0)
    mha = tta.MultiHeadAttention(embed_dim=12, num_heads=3).double()
    x = rng.normal(size=(2, 5, 12))
    params = {name: p.detach().numpy() for name, p in mha.state_dict().items()}
    mask = causal_mask(5, xp="numpy")
    out_np, w_np = npa.multi_head_attention(x, x, x, params, num_heads=3, mask=mask)
    out_t, w_t = mha(torch.tensor(x), mask=torch.tensor(mask))
    np.testing.assert_allclose(out_t.detach().numpy(), out_np, atol=1e-12)
    assert w_np.shape == (2, 3, 5, 5)


def test_multi_head_equals_torch_multiheadattention(device):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(embed_dim=32, num_heads=4, batch_first=True).to(device).eval()
    ours = tta.MultiHeadAttention.from_torch(ref)
    x = torch.randn(3, 10, 32, device=device)
    lengths = torch.tensor([10, 7, 1], device=device)
    allowed = causal_mask(10, device=device) & padding_mask(lengths, 10, device=device)  # (B, 1, T, T)
    out, w = ours(x, mask=allowed)
    # torch.nn.MultiheadAttention: True = NOT allowed, one mask per (batch x head)
    ref_mask = (~allowed).expand(3, 4, 10, 10).reshape(12, 10, 10)
    ref_out, ref_w = ref(x, x, x, attn_mask=ref_mask, need_weights=True, average_attn_weights=False)
    rows = allowed[:, 0].any(-1)                                   # (B, T) rows with a key
    assert (out - ref_out)[rows].abs().max().item() <= 1e-5
    assert (w - ref_w).permute(0, 2, 1, 3)[rows].abs().max().item() <= 1e-5
    # unmasked self-attention too
    out, _ = ours(x)
    ref_out, _ = ref(x, x, x)
    assert (out - ref_out).abs().max().item() <= 1e-5


def test_gradients_equal_sdpa(device):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 16, 8, device=device, requires_grad=True) for _ in range(3))
    mask = causal_mask(16, device=device)
    out, _ = tta.scaled_dot_product_attention(q, k, v, mask)
    g_ours = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    g_ref = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for a, b in zip(g_ours, g_ref):
        assert (a - b).abs().max().item() <= 1e-4


@pytest.mark.parametrize("impl", [npa, tta])
def test_bad_inputs_raise_clear_errors(impl):
    arr = (lambda *s: np.zeros(s)) if impl is npa else (lambda *s: torch.zeros(*s))
    q, k, v = arr(2, 5, 8), arr(2, 6, 8), arr(2, 6, 3)
    with pytest.raises(ValueError, match=r"head dimensions differ.*\(2, 5, 8\).*\(2, 6, 4\)"):
        impl.scaled_dot_product_attention(q, arr(2, 6, 4), v)
    with pytest.raises(ValueError, match=r"key and value lengths differ"):
        impl.scaled_dot_product_attention(q, k, arr(2, 4, 3))
    bad_shape = np.ones((5, 5), bool) if impl is npa else torch.ones(5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"mask of shape \(5, 5\) does not broadcast.*\(2, 5, 6\)"):
        impl.scaled_dot_product_attention(q, k, v, bad_shape)
    float_mask = np.ones((5, 6)) if impl is npa else torch.ones(5, 6)
    with pytest.raises(ValueError, match=r"mask must be boolean.*float"):
        impl.scaled_dot_product_attention(q, k, v, float_mask)


def test_mha_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match="not divisible by num_heads=5"):
        tta.MultiHeadAttention(embed_dim=12, num_heads=5)
    mha = tta.MultiHeadAttention(embed_dim=12, num_heads=3)
    with pytest.raises(ValueError, match="expects embed_dim=12"):
        mha(torch.zeros(1, 4, 10))
