"""Our GPT-2 against Hugging Face GPT2LMHeadModel built from a small random config."""
from __future__ import annotations

import pytest
import torch
import transformers

from course_lib.transformer import decoding
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel
from course_lib.transformer.loading import load_hf_state_dict

HF_CFG = dict(vocab_size=101, n_positions=96, n_embd=64, n_layer=3, n_head=4, bos_token_id=0,
              eos_token_id=0, pad_token_id=0)


def pair(device="cpu", attn_implementation="sdpa", **overrides):
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(**{**HF_CFG, **overrides})
    hf = transformers.GPT2LMHeadModel(hf_cfg).to(device).eval()
    ours = GPT2LMHeadModel(GPT2Config.from_dict({**hf_cfg.to_dict(), "attn_implementation": attn_implementation}))
    return hf, load_hf_state_dict(ours.to(device), hf.state_dict()).eval()


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_logits_and_50_greedy_tokens_equal_huggingface(impl, device):
    hf, ours = pair(device, impl)
    ids = torch.randint(1, 101, (2, 12), device=device)
    with torch.no_grad():
        assert (hf(ids).logits - ours(ids)).abs().max() <= 1e-5
    expected = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=50, do_sample=False,
                           eos_token_id=None, pad_token_id=0)
    got = decoding.generate(ours, ids, max_new_tokens=50)
    assert got.shape == (2, 62) and torch.equal(got, expected)


def test_weights_are_tied_and_conv1d_weights_transposed():
    hf, ours = pair()
    assert ours.lm_head.weight is ours.transformer.wte.weight
    torch.testing.assert_close(ours.transformer.h[0].attn.c_attn.weight, hf.transformer.h[0].attn.c_attn.weight.T)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters()) - 96 * 64


def test_gradients_equal_huggingface():
    hf, ours = pair(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    ids = torch.randint(0, 101, (2, 10))
    hf(ids, labels=ids).loss.backward()
    logits = ours(ids)
    torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 101), ids[:, 1:].reshape(-1)).backward()
    g_hf = hf.transformer.h[1].attn.c_attn.weight.grad.T
    torch.testing.assert_close(ours.transformer.h[1].attn.c_attn.weight.grad, g_hf, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.transformer.wte.weight.grad, hf.transformer.wte.weight.grad,
                               atol=1e-5, rtol=1e-4)


def test_attention_is_causal():
    _, ours = pair()
    ids = torch.randint(0, 101, (1, 10))
    ids2 = ids.clone()
    ids2[0, 6] = (ids[0, 6] + 1) % 101
    with torch.no_grad():
        a, b = ours(ids), ours(ids2)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-4


def test_bad_config_input_and_state_dict_raise_clear_errors():
    with pytest.raises(ValueError, match="n_embd=64 is not divisible by n_head=5"):
        GPT2Config(n_embd=64, n_head=5)
    hf, ours = pair()
    with pytest.raises(ValueError, match=r"sequence of 97 tokens \(0 cached \+ 97 new\) is longer than the "
                                         r"context n_positions=96"):
        ours(torch.zeros(1, 97, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds the model's context of 96 tokens"):
        decoding.generate(ours, torch.zeros(1, 90, dtype=torch.long), max_new_tokens=10)
    sd = hf.state_dict()
    sd["transformer.h.2.mlp.c_fc.weight"] = sd["transformer.h.2.mlp.c_fc.weight"].T      # wrong orientation
    del sd["transformer.ln_f.bias"]
    with pytest.raises(ValueError) as err:
        load_hf_state_dict(GPT2LMHeadModel(GPT2Config.from_dict(hf.config.to_dict())), sd)
    msg = str(err.value)
    assert "1 missing tensors: transformer.ln_f.bias" in msg
    assert "transformer.h.2.mlp.c_fc.weight expected (256, 64) got (64, 256) (after transposing)" in msg


# ----------------------------------------------------------------------------- padding, options (issue #10)

def randomise(model, seed=1):
    """Every parameter random, biases and LayerNorm gains included (HF's init zeroes biases, sets gains to 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0
            p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
    return model


def random_pair(device="cpu", attn_implementation="sdpa", **overrides):
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(**{**HF_CFG, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
                                        **overrides}, attn_implementation=attn_implementation)
    hf = randomise(transformers.GPT2LMHeadModel(hf_cfg).to(device)).eval()
    ours = GPT2LMHeadModel(GPT2Config.from_dict({**hf_cfg.to_dict(), "attn_implementation": attn_implementation}))
    return hf, load_hf_state_dict(ours.to(device), hf.state_dict()).eval()


def padded_batch(side, device="cpu", vocab=101, pad=0):
    """Three rows of lengths 9, 6, 8 padded to 9 on the left or the right; the pad id also occurs as a real token."""
    ids = torch.randint(1, vocab, (3, 9), generator=torch.Generator().manual_seed(7))
    ids[2, 4] = pad
    mask = torch.ones_like(ids)
    for row, n_pad in ((1, 3), (2, 1)):
        mask[row, :n_pad] = 0 if side == "left" else 1
        if side == "right":
            mask[row, 9 - n_pad:] = 0
    return ids.masked_fill(mask == 0, pad).to(device), mask.to(device)


def hf_grads(hf, transposed=()):
    return {n: (p.grad.T if any(n.endswith(t) for t in transposed) else p.grad) for n, p in hf.named_parameters()}


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batches_give_huggingface_logits_and_gradients(impl, side, device):
    hf, ours = random_pair(device, impl)
    ids, mask = padded_batch(side, device)
    real = mask.bool()
    labels = ids.masked_fill(~real, -100)                          # no loss on padding ...
    labels[:, 1:][~real[:, :-1]] = -100     # ... nor on predictions made at a pad (a query with no key to see:
    # HF's eager attention averages every value there, its sdpa path and ours give 0)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)                 # what generate passes for left padding
    for pos in (None, positions):
        hf.zero_grad(), ours.zero_grad()
        expected = hf(ids, attention_mask=mask, position_ids=pos, labels=labels)
        logits = ours(ids, attention_mask=mask, position_ids=pos)
        assert (logits - expected.logits)[real].abs().max() <= 1e-5
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 101), labels[:, 1:].reshape(-1))
        torch.testing.assert_close(loss, expected.loss)
        loss.backward(), expected.loss.backward()
        g_hf = hf_grads(hf, GPT2LMHeadModel.hf_transposed)
        for name, p in ours.named_parameters():                   # every parameter, biases and gains too
            torch.testing.assert_close(p.grad, g_hf[name], atol=1e-5, rtol=1e-4, msg=name)
    if side == "left":                                             # and padding really matters
        with torch.no_grad():
            assert (ours(ids) - expected.logits)[real].abs().max() > 1e-2


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_batched_generation_with_left_padding_equals_huggingface(use_cache, device):
    hf, ours = random_pair(device)
    ids, mask = padded_batch("left", device)
    kw = dict(attention_mask=mask, max_new_tokens=12, eos_token_id=None, pad_token_id=0, use_cache=use_cache)
    expected = hf.generate(ids, do_sample=False, **kw)
    got = decoding.generate(ours, ids, 12, attention_mask=mask, use_cache=use_cache)
    assert torch.equal(got, expected)
    assert not torch.equal(got, decoding.generate(ours, ids, 12, use_cache=use_cache))   # the mask matters
    sampling = dict(do_sample=True, temperature=1.3, top_k=20, top_p=0.9)
    torch.manual_seed(5)                       # HF samples from the global generator: same stream for both
    expected = hf.generate(ids, **sampling, **kw)
    torch.manual_seed(5)
    got = decoding.generate(ours, ids, 12, attention_mask=mask, use_cache=use_cache, **sampling)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("options", [dict(scale_attn_weights=False), dict(scale_attn_by_inverse_layer_idx=True),
                                     dict(scale_attn_weights=False, scale_attn_by_inverse_layer_idx=True)],
                         ids=["unscaled", "inverse-layer", "both"])
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_attention_scaling_options_equal_huggingface(options, impl):
    hf, ours = random_pair("cpu", impl, **options)
    ids, mask = padded_batch("left")
    with torch.no_grad():
        expected = hf(ids, attention_mask=mask).logits
        assert (ours(ids, attention_mask=mask) - expected)[mask.bool()].abs().max() <= 1e-5


@pytest.mark.parametrize("option", ["reorder_and_upcast_attn", "add_cross_attention"])
def test_unimplemented_gpt2_options_raise(option):
    hf_cfg = transformers.GPT2Config(**HF_CFG, **{option: True})
    with pytest.raises(NotImplementedError, match=f"{option}=True.*is not implemented"):
        GPT2Config.from_dict(hf_cfg.to_dict())
