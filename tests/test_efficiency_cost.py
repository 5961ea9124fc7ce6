"""The cost calculator against our models: parameter counts, FLOPs, activation bytes, KV cache, Adam state."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from course_lib.efficiency import cost
from course_lib.transformer.bert import BertConfig, BertModel
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel
from course_lib.transformer.llama import LlamaConfig, LlamaForCausalLM

TINY = GPT2Config(vocab_size=512, n_positions=64, n_embd=64, n_layer=3, n_head=4, resid_pdrop=0.0,
                  embd_pdrop=0.0, attn_pdrop=0.0)
CONFIGS = [
    (GPT2Config(), GPT2LMHeadModel),                                   # GPT-2 small, 124 M
    (TINY, GPT2LMHeadModel),
    (BertConfig(), BertModel),                                         # BERT-base, 109 M
    (BertConfig(hidden_size=384, num_hidden_layers=6, intermediate_size=1536), BertModel),   # MiniLM-L6
    (LlamaConfig(), LlamaForCausalLM),                                 # SmolLM2-135M
    (LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=False), LlamaForCausalLM),
]


@pytest.mark.parametrize("config, cls", CONFIGS, ids=lambda c: type(c).__name__ if not isinstance(c, type) else "")
def test_parameter_count_is_exact(config, cls):
    with torch.device("meta"):                                         # shapes only, no memory
        model = cls(config)
    counts = cost.parameter_counts(cost.shape_of(config))
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    parts = ("embeddings", "attention", "ffn", "norms", "head", "pooler")
    assert sum(counts[k] for k in parts) == counts["total"]


def test_published_sizes():
    assert cost.parameter_counts(cost.shape_of(GPT2Config()))["total"] == 124_439_808
    assert cost.parameter_counts(cost.shape_of(LlamaConfig()))["total"] == 134_515_008


def _train_step_tensors(model, B, T, V):
    x = torch.randint(0, V, (B, T + 1), generator=torch.Generator().manual_seed(0))
    logits = model(x[:, :-1])
    return F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_training_flops_match_flop_counter(impl, one_torch_thread):
    config = GPT2Config(**{**TINY.__dict__, "attn_implementation": impl})
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    B, T = 2, 32
    with FlopCounterMode(display=False) as counter:
        _train_step_tensors(model, B, T, config.vocab_size).backward()
    shape = cost.shape_of(config)
    counted = counter.get_total_flops()
    if impl == "eager":        # the scores and the weighted sum are ordinary matmuls: all counted
        assert counted == pytest.approx(B * T * cost.flops_per_token(shape, T), rel=1e-9)
    else:                      # the fused CPU kernel is not counted: the matmul term alone matches exactly
        matmul_only = 6 * cost.parameter_counts(shape)["matmul"] * B * T
        assert counted == matmul_only


def test_gpt3_training_flops_match_brown_et_al():
    flops = 6 * 175e9 * 300e9
    assert flops == pytest.approx(3.14e23, rel=0.01)
    assert cost.extrapolate()["GPT-3 175B"]["flops"] == pytest.approx(3.14e23, rel=0.01)


def test_llama_7b_gpu_hours_within_a_factor_of_the_paper():
    hw = cost.Hardware(mfu=0.5)
    hours = cost.extrapolate(hw)["LLaMA 7B"]["gpu_hours"]
    assert 0.5 < hours / 82_432 < 2.0            # Touvron et al. report 82,432 A100-hours


def test_activation_bytes_match_saved_tensors(one_torch_thread):
    """Every tensor autograd saves for backward (parameters excluded, shared storage once) vs the estimate."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(TINY)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved.setdefault(ptr, t.untyped_storage().nbytes())
        return t

    B, T = 3, 48
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _train_step_tensors(model, B, T, TINY.vocab_size)
    estimate = 4 * cost.activation_elements(cost.shape_of(TINY), B, T)
    assert estimate == pytest.approx(sum(saved.values()), rel=0.02)          # stated tolerance: 2 %
    with_ckpt = 4 * cost.activation_elements(cost.shape_of(TINY), B, T, checkpointing=True)
    assert with_ckpt < estimate


def test_weights_gradients_and_adam_state_bytes_are_exact(one_torch_thread):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _train_step_tensors(model, 2, 16, TINY.vocab_size).backward()
    opt.step()
    weights = sum(p.nbytes for p in model.parameters())
    grads = sum(p.grad.nbytes for p in model.parameters())
    moments = sum(s[k].nbytes for s in opt.state.values() for k in ("exp_avg", "exp_avg_sq"))
    mem = cost.training_memory(cost.shape_of(TINY), 2, 16)
    assert (mem["weights"], mem["gradients"], mem["optimizer"]) == (weights, grads, moments)


def test_kv_cache_bytes_match_our_cache():
    for config, cls in ((TINY, GPT2LMHeadModel), (CONFIGS[-1][0], LlamaForCausalLM)):
        model = cls(config)
        cache = model.new_cache(batch_size=3, max_length=40)
        measured = sum(t.nbytes for t in cache.keys + cache.values)
        assert cost.kv_cache_bytes(cost.shape_of(config), 3, 40) == measured
    smol = cost.shape_of(LlamaConfig())                  # grouped-query attention: 3 KV heads of 64
    assert cost.kv_cache_bytes(smol, 1, 8192, "bf16") == 2 * 30 * 3 * 8192 * 64 * 2


def test_training_time_arithmetic():
    hw = cost.Hardware(peak_flops=1e15, mfu=0.5, usd_per_gpu_hour=3.0)
    t = cost.training_time(1.8e18 * 24, hw, num_gpus=2)
    assert math.isclose(t["gpu_hours"], 24.0) and math.isclose(t["days"], 0.5) and math.isclose(t["usd"], 72.0)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="GPT2Config, BertConfig or LlamaConfig"):
        cost.shape_of({"n_embd": 3})
    with pytest.raises(ValueError, match="no KV cache"):
        cost.kv_cache_bytes(cost.shape_of(BertConfig()), 1, 8)
    with pytest.raises(ValueError, match="dtype must be one of"):
        cost.training_memory(cost.shape_of(TINY), 1, 8, dtype="float64")
    with pytest.raises(ValueError, match="0 < mfu <= 1"):
        cost.Hardware(mfu=1.5)
    with pytest.raises(ValueError, match="num_gpus"):
        cost.training_time(1e20, cost.Hardware(), 0)
    with pytest.raises(ValueError, match="seq_len"):
        cost.flops_per_token(cost.shape_of(TINY), 0)
