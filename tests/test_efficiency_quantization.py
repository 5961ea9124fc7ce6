"""int8 weight quantisation from scratch, against torchao and PyTorch's dynamic quantisation."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.efficiency import quantization as Q
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel

CFG = GPT2Config(vocab_size=300, n_positions=32, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
                 embd_pdrop=0.0, attn_pdrop=0.0)


def _model():
    torch.manual_seed(0)
    return GPT2LMHeadModel(CFG).eval()


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [8, 4])
def test_round_trip_error_is_at_most_half_a_step(symmetric, bits):
    w = torch.randn(48, 80, generator=torch.Generator().manual_seed(1)) * torch.rand(48, 1) + 0.3 * (not symmetric)
    qt = Q.quantize_per_channel(w, symmetric, bits)
    assert qt.qdata.dtype == torch.int8
    lo = -(2 ** (bits - 1)) + (1 if symmetric else 0)
    assert qt.qdata.min() >= lo and qt.qdata.max() <= 2 ** (bits - 1) - 1
    err = (w - qt.dequantize()).abs()
    assert (err <= qt.scale / 2 + 1e-6).all()                      # |W - s q| <= s / 2
    assert Q.quantize_per_channel(torch.zeros(3, 4), symmetric, bits).dequantize().abs().max() == 0


def test_asymmetric_wins_on_a_skewed_row_and_keeps_zero_exact():
    w = torch.rand(16, 64, generator=torch.Generator().manual_seed(2))          # all weights in [0, 1)
    err = {s: (w - Q.quantize_per_channel(w, s, 4).dequantize()).norm() for s in (True, False)}
    assert err[False] < 0.6 * err[True]                   # symmetric wastes the negative half of its levels
    w[:, 0] = 0.0
    assert (Q.quantize_per_channel(w, False).dequantize()[:, 0] == 0).all()     # 0 is a code exactly


def test_ours_agrees_with_torchao_int8_weight_only():
    model = _model()
    ao = Q.torchao_route(model)
    for name, lin in model.named_modules():
        if isinstance(lin, nn.Linear) and name != "lm_head":
            theirs = ao.get_submodule(name).weight
            ours = Q.quantize_per_channel(lin.weight, symmetric=True)
            # torchao also uses a symmetric per-row absmax scale (absmax / 127.5 instead of / 127)
            torch.testing.assert_close(theirs.scale, ours.scale * 127 / 127.5, rtol=1e-5, atol=0)
            diff = (theirs.dequantize().float() - ours.dequantize()).abs()
            assert (diff <= ours.scale + 1e-7).all()             # at most one quantisation step apart
    x = torch.randint(0, CFG.vocab_size, (2, 16))
    with torch.no_grad():
        ref, mine, theirs = model(x), Q.quantize_linears(model)(x), ao(x)
    assert (mine - ref).abs().max() < 0.02 and (theirs - ref).abs().max() < 0.02


def test_int8_linear_computes_with_the_dequantised_weight():
    torch.manual_seed(0)
    lin = nn.Linear(20, 7)
    q = Q.Int8Linear(lin, symmetric=False)
    x = torch.randn(3, 5, 20)
    w_hat = Q.quantize_per_channel(lin.weight, False).dequantize()
    torch.testing.assert_close(q(x), torch.nn.functional.linear(x, w_hat, lin.bias), rtol=0, atol=1e-6)
    assert q.qdata.dtype == torch.int8 and not any(p.requires_grad for p in q.parameters())


def test_dynamic_route_warns_that_it_is_deprecated_and_is_close():
    model = _model()
    q, caught = Q.quantize_dynamic_route(model)
    assert any("deprecated" in w for w in caught)
    assert "DynamicQuantizedLinear" in repr(q.transformer.h[0].mlp.c_fc)
    assert isinstance(q.lm_head, nn.Linear)                         # the tied head is skipped
    x = torch.randint(0, CFG.vocab_size, (2, 16))
    with torch.no_grad():
        assert (q(x) - model(x)).abs().max() < 0.05


def test_sizes_shrink_as_expected():
    model = _model()
    fp32 = Q.state_dict_bytes(model)
    linear_weights = sum(m.weight.numel() for n, m in model.named_modules()
                         if isinstance(m, nn.Linear) and n != "lm_head")
    ours = Q.state_dict_bytes(Q.quantize_linears(model))
    saved = fp32 - ours
    assert saved == pytest.approx(3 * linear_weights, rel=0.05)     # 4 bytes -> 1 byte per linear weight
    assert Q.state_dict_bytes(Q.bf16_route(model)) == pytest.approx(fp32 / 2, rel=0.05)


def test_weight_errors_name_every_linear():
    errors = Q.weight_errors(_model())
    assert len(errors) == 4 * CFG.n_layer and all(0 < e < 0.02 for e in errors.values())
    assert all(e4 > e8 for e4, e8 in zip(Q.weight_errors(_model(), bits=4).values(), errors.values()))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2-D floating-point weight"):
        Q.quantize_per_channel(torch.ones(3))
    with pytest.raises(ValueError, match="bits must be an int from 2 to 8"):
        Q.quantize_per_channel(torch.ones(3, 3), bits=16)
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        Q.Int8Linear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="no nn.Linear"):
        Q.quantize_linears(nn.Sequential(nn.ReLU()))


def test_int8_model_runs_on_every_device(device):
    """cpu always; cuda when a GPU is present (skipped otherwise)."""
    model = _model().to(device)
    q = Q.quantize_linears(model).to(device)
    x = torch.randint(0, CFG.vocab_size, (2, 8), device=device)
    with torch.no_grad():
        assert (q(x) - model(x)).abs().max() < 0.02
    assert q.transformer.h[0].mlp.c_fc.qdata.device.type == torch.device(device).type
