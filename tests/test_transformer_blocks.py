"""Pre-LN / post-LN blocks and the encoder-decoder, against torch.nn.Transformer; attend; KVCache."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.attention import causal_mask
from course_lib.transformer.blocks import EncoderLayer, KVCache, Transformer, attend


@pytest.fixture(autouse=True)
def _no_fastpath():
    """PyTorch's inference fast path (nested tensors) zeroes padded positions; compare the plain path."""
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(True)


def _reference(norm_first: bool, device):
    torch.manual_seed(0)
    return nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                          dim_feedforward=64, dropout=0.1, batch_first=True,
                          norm_first=norm_first).to(device).eval()


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_encoder_decoder_equals_torch_transformer(norm_first, device):
    ref = _reference(norm_first, device)
    ours = Transformer.from_torch(ref).eval()
    src, tgt = torch.randn(3, 7, 32, device=device), torch.randn(3, 5, 32, device=device)
    lengths = torch.tensor([7, 4, 2], device=device)
    keep = torch.arange(7, device=device)[None] < lengths[:, None]              # (B, T_src) True = token
    causal = causal_mask(5, device=device)
    with torch.no_grad():
        expected = ref(src, tgt, tgt_mask=~causal, src_key_padding_mask=~keep,
                       memory_key_padding_mask=~keep)                             # PyTorch: True = blocked
        got = ours(src, tgt, src_mask=keep[:, None, None, :], tgt_mask=causal,
                   memory_mask=keep[:, None, None, :])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_decoder_is_causal_and_uses_the_encoder_output():
    model = _reference(False, "cpu")
    ours = Transformer.from_torch(model).eval()
    src, tgt = torch.randn(1, 6, 32), torch.randn(1, 5, 32)
    mask = causal_mask(5)
    with torch.no_grad():
        out = ours(src, tgt, tgt_mask=mask)
        tgt2 = tgt.clone()
        tgt2[:, 3:] += 1.0                                          # change the future
        out2 = ours(src, tgt2, tgt_mask=mask)
        out3 = ours(src + 1.0, tgt, tgt_mask=mask)                  # change the source
    torch.testing.assert_close(out[:, :3], out2[:, :3])
    assert (out[:, 3:] - out2[:, 3:]).abs().max() > 1e-3
    assert (out - out3).abs().max() > 1e-3                          # cross-attention reads the source


def test_pre_ln_keeps_an_unnormalised_residual_path_post_ln_does_not():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16) * 10 + 3
    post = EncoderLayer(16, 4, 32, dropout=0.0, norm_first=False).eval()
    pre = EncoderLayer(16, 4, 32, dropout=0.0, norm_first=True).eval()
    pre.load_state_dict(post.state_dict())
    with torch.no_grad():
        y_post, y_pre = post(x), pre(x)
    # post-LN output is normalised (mean 0, std 1 per token); pre-LN output carries x's scale
    torch.testing.assert_close(y_post.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    assert y_pre.std(-1).mean() > 5 and (y_pre.mean(-1) - x.mean(-1)).abs().mean() < 2


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 32, dropout=0.5)
    x = torch.randn(2, 5, 16)
    a, b = layer(x), layer(x)
    assert (a - b).abs().max() > 1e-3
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


@pytest.mark.parametrize("causal", [False, True])
def test_attend_eager_equals_sdpa_also_with_a_cache_offset(causal, device):
    torch.manual_seed(0)
    q = torch.randn(2, 3, 4, 8, device=device)
    k, v = torch.randn(2, 3, 9, 8, device=device), torch.randn(2, 3, 9, 8, device=device)
    pad = torch.ones(2, 1, 1, 9, dtype=torch.bool, device=device)
    pad[1, ..., :2] = False
    a, w = attend(q, k, v, pad, causal=causal, implementation="eager")
    b, none = attend(q, k, v, pad, causal=causal, implementation="sdpa")
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert none is None and w.shape == (2, 3, 4, 9)
    if causal:      # query i sits at position 5 + i: later keys get zero weight
        assert w[..., 0, 6:].abs().max() == 0 and w[..., 0, 5].min() > 0
    with pytest.raises(ValueError, match="implementation must be"):
        attend(q, k, v, implementation="flash")


def test_kv_cache_overflow_and_bad_width_raise():
    cache = KVCache(num_layers=1, batch_size=1, num_heads=2, max_length=4, head_dim=8)
    cache.update(0, torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8))
    cache.advance(3)
    with pytest.raises(ValueError, match="KV cache is full: it holds 4 positions, 3 are used"):
        cache.update(0, torch.zeros(1, 2, 2, 8), torch.zeros(1, 2, 2, 8))
    with pytest.raises(ValueError, match="d_model=30 is not divisible by nhead=4"):
        Transformer(d_model=30, nhead=4)
