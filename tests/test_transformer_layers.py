"""LayerNorm, RMSNorm, GELU and the FFN: NumPy and PyTorch versions against PyTorch / Hugging Face."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.transformer import layers as L


@pytest.mark.parametrize("shape,eps", [((2, 5, 16), 1e-5), ((3, 384), 1e-12), ((1, 7, 64), 1e-3)])
def test_layer_norm_numpy_and_torch_equal_nn_layernorm(shape, eps, rng):
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    ref = torch.nn.LayerNorm(shape[-1], eps=eps)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(w)), ref.bias.copy_(torch.from_numpy(b))
        expected = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(L.layer_norm_numpy(x, w, b, eps), expected, atol=2e-5)
    got = L.layer_norm(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), eps)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-5)


def test_layer_norm_uses_biased_variance_inside_the_root():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    out = L.layer_norm_numpy(x, np.ones(4), np.zeros(4), eps=0.5)
    mu, var = 3.0, np.mean((x - 3.0) ** 2)          # biased: / 4, = 3.5
    np.testing.assert_allclose(out, (x - mu) / np.sqrt(var + 0.5))
    assert not np.allclose(out, (x - mu) / np.sqrt(x.var(ddof=1) + 0.5))


def test_layer_norm_module_fused_and_written_out_agree_in_value_and_gradient(device):
    torch.manual_seed(0)
    x = torch.randn(4, 9, 32, device=device, requires_grad=True)
    ref = torch.nn.LayerNorm(32, eps=1e-5).to(device)
    ours = L.LayerNorm(32, eps=1e-5, fused=False).to(device)
    with torch.no_grad():
        ref.weight.normal_(), ref.bias.normal_()
        ours.weight.copy_(ref.weight), ours.bias.copy_(ref.bias)
    g = torch.randn(4, 9, 32, device=device)
    gx_ref, gw_ref = torch.autograd.grad((ref(x) * g).sum(), (x, ref.weight))
    gx, gw = torch.autograd.grad((ours(x) * g).sum(), (x, ours.weight))
    torch.testing.assert_close(gx, gx_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gw, gw_ref, atol=1e-5, rtol=1e-4)
    ours.fused = True
    torch.testing.assert_close(ours(x), ref(x))


def test_rms_norm_equals_llama_rmsnorm(rng):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    x = rng.standard_normal((2, 6, 24)).astype(np.float32)
    ref = LlamaRMSNorm(24, eps=1e-6)
    with torch.no_grad():
        ref.weight.normal_()
        expected = ref(torch.from_numpy(x))
    w = ref.weight.detach()
    torch.testing.assert_close(L.rms_norm(torch.from_numpy(x), w, 1e-6), expected)
    np.testing.assert_allclose(L.rms_norm_numpy(x, w.numpy(), 1e-6), expected.numpy(), atol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_numpy_and_torch_equal_f_gelu(approximate, rng):
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    expected = F.gelu(torch.from_numpy(x), approximate=approximate).numpy()
    np.testing.assert_allclose(L.gelu_numpy(x, approximate), expected, atol=1e-6)
    np.testing.assert_allclose(L.gelu(torch.from_numpy(x), approximate).numpy(), expected, atol=1e-6)


def test_the_two_gelus_differ_and_match_their_huggingface_names():
    from transformers.activations import ACT2FN
    x = torch.linspace(-4, 4, 401)
    assert (F.gelu(x) - F.gelu(x, approximate="tanh")).abs().max() > 1e-4       # not the same function
    torch.testing.assert_close(L.ACTIVATIONS["gelu"](x), ACT2FN["gelu"](x))
    torch.testing.assert_close(L.ACTIVATIONS["gelu_new"](x), ACT2FN["gelu_new"](x), atol=1e-6, rtol=0)


def test_feed_forward_numpy_equals_torch(rng):
    D, Fw = 8, 32
    params = {"fc1.weight": rng.standard_normal((Fw, D)), "fc1.bias": rng.standard_normal(Fw),
              "fc2.weight": rng.standard_normal((D, Fw)), "fc2.bias": rng.standard_normal(D)}
    x = rng.standard_normal((2, 5, D))
    tparams = {k: torch.from_numpy(v) for k, v in params.items()}
    for act in ("gelu", "gelu_new", "relu"):
        np.testing.assert_allclose(L.feed_forward_numpy(x, params, act),
                                   L.feed_forward(torch.from_numpy(x), tparams, act).numpy(), atol=1e-10)
    # position-wise: every position is transformed alone
    np.testing.assert_allclose(L.feed_forward_numpy(x[:, 2:3], params), L.feed_forward_numpy(x, params)[:, 2:3])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="16 features but weight has shape"):
        L.layer_norm(torch.randn(2, 16), torch.ones(8), torch.zeros(8))
    with pytest.raises(ValueError, match="unknown activation 'swish2'"):
        L.feed_forward(torch.randn(1, 2), {}, "swish2")
    with pytest.raises(ValueError, match="approximate must be"):
        L.gelu_numpy(np.zeros(3), "erf")
