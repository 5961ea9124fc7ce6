"""Llama-style blocks (RMSNorm, RoPE, SwiGLU, GQA) against a random transformers.LlamaForCausalLM."""
from __future__ import annotations

import pytest
import torch
import transformers

from course_lib.transformer import decoding
from course_lib.transformer.llama import LlamaConfig, LlamaForCausalLM, repeat_kv
from course_lib.transformer.loading import load_hf_state_dict


def pair(device="cpu", tie=False, kv_heads=2):
    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=8, num_key_value_heads=kv_heads,
                                      max_position_embeddings=64, tie_word_embeddings=tie, rope_theta=500.0,
                                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    hf = transformers.LlamaForCausalLM(hf_cfg).to(device).eval()
    ours = LlamaForCausalLM(LlamaConfig.from_dict(hf_cfg.to_dict())).to(device)
    return hf, load_hf_state_dict(ours, hf.state_dict()).eval()


@pytest.mark.parametrize("tie,kv_heads", [(False, 2), (True, 8), (False, 1)], ids=["gqa", "mha-tied", "mqa"])
def test_logits_and_greedy_tokens_equal_huggingface(tie, kv_heads, device):
    hf, ours = pair(device, tie, kv_heads)
    assert ours.config.rope_theta == 500.0
    ids = torch.randint(3, 97, (2, 10), device=device)
    with torch.no_grad():
        assert (hf(ids).logits - ours(ids)).abs().max() <= 1e-5
    expected = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False,
                           eos_token_id=None, pad_token_id=0)
    assert torch.equal(decoding.generate(ours, ids, 20, use_cache=True), expected)
    assert torch.equal(decoding.generate(ours, ids, 20, use_cache=False), expected)


def test_gqa_cache_holds_only_the_key_value_heads():
    _, ours = pair(kv_heads=2)
    cache = ours.new_cache(1, 16)
    assert cache.keys[0].shape == (1, 2, 16, 8)              # 2 KV heads, not 8: a 4x smaller cache
    x = torch.arange(12).view(1, 2, 2, 3).float()
    torch.testing.assert_close(repeat_kv(x, 3)[:, 3:6], x[:, 1:2].expand(1, 3, 2, 3))


def test_bad_llama_configs_raise():
    with pytest.raises(ValueError, match="num_attention_heads=8 is not a multiple of num_key_value_heads=3"):
        LlamaConfig(hidden_size=64, num_attention_heads=8, num_key_value_heads=3)
    with pytest.raises(ValueError, match="hidden_size=60 is not divisible by num_attention_heads=8"):
        LlamaConfig(hidden_size=60, num_attention_heads=8, num_key_value_heads=2)
    _, ours = pair()
    with pytest.raises(ValueError, match="longer than the context max_position_embeddings=64"):
        ours(torch.zeros(1, 65, dtype=torch.long))


@pytest.mark.slow
def test_real_smollm2_answers_through_our_implementation():
    """Needs the optional packages gguf and accelerate (transformers' GGUF reader); about 20 s."""
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    from course_lib.transformer.llama import load_smollm2
    model, tok = load_smollm2()
    assert model.config.num_key_value_heads == 3 and model.config.num_hidden_layers == 30
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt")
    ids = ids if torch.is_tensor(ids) else ids["input_ids"]
    out = decoding.generate(model, ids, 20, eos_token_id=tok.eos_token_id)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])


# ----------------------------------------------------------------------------- padding, options (issue #10)

def random_pair(device="cpu", tie=False, impl="sdpa", **overrides):
    """HF and ours with every parameter random (RMSNorm gains included); pad token 0."""
    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(**{**dict(
        vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=tie, rope_theta=500.0,
        pad_token_id=0, bos_token_id=1, eos_token_id=2), **overrides}, attn_implementation=impl)
    hf = transformers.LlamaForCausalLM(hf_cfg).to(device).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.copy_((1.0 if name.endswith("norm.weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
    ours = LlamaForCausalLM(LlamaConfig.from_dict({**hf_cfg.to_dict(), "attn_implementation": impl})).to(device)
    return hf, load_hf_state_dict(ours, hf.state_dict()).eval()


def padded_batch(side, device="cpu", pad=0):
    """Rows of 9, 6 and 8 real tokens padded to 9 on one side; row 2 also holds the pad id as a real token."""
    ids = torch.randint(3, 97, (3, 9), generator=torch.Generator().manual_seed(7))
    ids[2, 4] = pad
    mask = torch.ones_like(ids)
    mask[1, :3] = mask[2, :1] = 0
    if side == "right":
        mask = mask.flip(1)
    return ids.masked_fill(mask == 0, pad).to(device), mask.to(device)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("side,tie", [("left", False), ("right", False), ("left", True)],
                         ids=["left", "right", "left-tied"])
def test_padded_batches_give_huggingface_logits_and_gradients(side, tie, impl, device):
    hf, ours = random_pair(device, tie, impl)
    ids, mask = padded_batch(side, device)
    real = mask.bool()
    labels = ids.masked_fill(~real, -100)
    labels[:, 1:][~real[:, :-1]] = -100        # no loss on padding, nor on what a pad position predicts
    for pos in (None, (mask.cumsum(-1) - 1).clamp(min=0)):
        hf.zero_grad(), ours.zero_grad()
        expected = hf(ids, attention_mask=mask, position_ids=pos, labels=labels)
        logits = ours(ids, attention_mask=mask, position_ids=pos)
        assert (logits - expected.logits)[real].abs().max() <= 1e-5
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 97), labels[:, 1:].reshape(-1))
        loss.backward(), expected.loss.backward()
        torch.testing.assert_close(loss, expected.loss)
        g_hf = dict(hf.named_parameters())
        for name, p in ours.named_parameters():
            torch.testing.assert_close(p.grad, g_hf[name].grad, atol=1e-5, rtol=1e-4, msg=name)
    pad_row = ours.model.embed_tokens.weight.grad[0]
    if not tie:                        # padding_idx: the pad row gets no gradient from the lookup ...
        assert pad_row.abs().max() == 0
    else:                              # ... but a tied output layer still scores the pad token
        assert pad_row.abs().max() > 0


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_batched_generation_with_left_padding_equals_huggingface(use_cache, device):
    hf, ours = random_pair(device)
    ids, mask = padded_batch("left", device)
    kw = dict(attention_mask=mask, max_new_tokens=12, eos_token_id=None, pad_token_id=0, use_cache=use_cache)
    expected = hf.generate(ids, do_sample=False, **kw)
    got = decoding.generate(ours, ids, 12, attention_mask=mask, use_cache=use_cache)
    assert torch.equal(got, expected)
    sampling = dict(do_sample=True, temperature=1.3, top_k=20, top_p=0.9)
    torch.manual_seed(5)                       # HF samples from the global generator: same stream for both
    expected = hf.generate(ids, **sampling, **kw)
    torch.manual_seed(5)
    assert torch.equal(decoding.generate(ours, ids, 12, attention_mask=mask, use_cache=use_cache, **sampling),
                       expected)


@pytest.mark.parametrize("act", ["gelu", "gelu_pytorch_tanh", "relu"])
def test_other_hidden_activations_equal_huggingface(act):
    hf, ours = random_pair(hidden_act=act)
    ids, mask = padded_batch("left")
    with torch.no_grad():
        assert (ours(ids, attention_mask=mask) - hf(ids, attention_mask=mask).logits)[mask.bool()].abs().max() <= 1e-5


@pytest.mark.parametrize("option,value,match", [
    ("attention_bias", True, "attention_bias=True.*not implemented"),
    ("mlp_bias", True, "mlp_bias=True.*not implemented"),
    ("rope_parameters", {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}, "only the default RoPE"),
])
def test_unimplemented_llama_options_raise(option, value, match):
    d = transformers.LlamaConfig(vocab_size=97, hidden_size=64, num_attention_heads=8).to_dict()
    with pytest.raises(NotImplementedError, match=match):
        LlamaConfig.from_dict({**d, option: value})
    with pytest.raises(ValueError, match="unknown activation 'swish2'"):
        LlamaConfig.from_dict({**d, "hidden_act": "swish2"})


def test_rope_tables_at_positions_equal_the_offset_tables():
    from course_lib.attention.position import rope_cos_sin_torch
    from course_lib.transformer.llama import rope_cos_sin_at
    cos, sin = rope_cos_sin_at(torch.arange(5, 12)[None], 8, 500.0)              # (1, 1, 7, 8)
    ref_cos, ref_sin = rope_cos_sin_torch(7, 8, 500.0, offset=5)                  # (7, 8)
    assert cos.shape == (1, 1, 7, 8)
    assert torch.equal(cos[0, 0], ref_cos) and torch.equal(sin[0, 0], ref_sin)
