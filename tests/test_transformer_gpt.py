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
