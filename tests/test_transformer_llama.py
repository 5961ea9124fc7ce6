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
