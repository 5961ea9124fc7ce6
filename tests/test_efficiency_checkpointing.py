"""Activation checkpointing: same gradients, fewer saved bytes, the count itself checked."""
import pytest
import torch
from torch import nn

from course_lib.efficiency import checkpointing as C
from course_lib.efficiency.workloads import random_lm_batches, tiny_gpt
from course_lib.transformer.training import causal_lm_loss


@pytest.fixture
def setup(one_torch_thread):
    model = tiny_gpt(pretrained=False, n_layer=4, n_embd=32, n_head=2, vocab_size=97, n_positions=32)
    return model, random_lm_batches(1, 4, 16, 97, seed=0)[0]


def _grads(model, batch):
    model.zero_grad(set_to_none=True)
    causal_lm_loss(model, batch)[0].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_same_gradients_and_names(setup):
    model, batch = setup
    names = list(model.state_dict())
    plain = _grads(model, batch)
    C.enable_checkpointing(model)
    assert all(C.is_checkpointed(b) for b in model.transformer.h) and list(model.state_dict()) == names
    ck = _grads(model, batch)
    for n in plain:
        torch.testing.assert_close(ck[n], plain[n], atol=1e-7, rtol=1e-6)
    C.disable_checkpointing(model)
    assert not any(C.is_checkpointed(b) for b in model.transformer.h)


def test_saved_bytes_counted_exactly():
    lin = nn.Linear(8, 16)
    x = torch.randn(5, 8, requires_grad=True)
    got = C.saved_activation_bytes(lin, lambda: torch.tanh(lin(x)).sum())
    # Linear saves its input x (5*8 floats; W is a parameter, not counted); tanh saves its output (5*16)
    assert got.saved == (5 * 8 + 5 * 16) * 4 and got.held == 0


def test_checkpointing_keeps_only_block_inputs(setup):
    model, batch = setup
    plain = C.activation_memory(model, batch)
    C.enable_checkpointing(model)
    ck = C.activation_memory(model, batch)
    B, T, D = 4, 16, 32
    # per block, plain keeps the block's activations; checkpointed keeps its (B, T, D) input only
    per_block_plain = (plain.held_bytes - ck.held_bytes) / 4 + B * T * D * 4
    assert per_block_plain == pytest.approx(plain.block_bytes, rel=0.05)
    assert ck.held_bytes < plain.held_bytes
    assert ck.peak_bytes == ck.held_bytes + ck.block_bytes and plain.peak_bytes == plain.held_bytes


def test_tradeoff_rows(setup):
    _, batch = setup
    make = lambda L: tiny_gpt(pretrained=False, n_layer=L, n_embd=32, n_head=2, vocab_size=97, n_positions=32)  # noqa: E731
    rows = C.checkpoint_tradeoff(make, [2, 4], batch, repeats=1)
    assert [r["n_layer"] for r in rows] == [2, 4]
    assert rows[1]["memory_ratio"] < rows[0]["memory_ratio"] < 1.0          # deeper: checkpointing saves more
    assert rows[1]["held_mb"] > rows[0]["held_mb"]


def test_bert_blocks_found():
    from course_lib.transformer.bert import BertConfig, BertModel
    m = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=16)).train()
    C.enable_checkpointing(m)
    x = torch.randint(50, (2, 6))
    out = m(x, torch.ones_like(x)).last_hidden_state
    out.sum().backward()
    assert all(C.is_checkpointed(b) for b in m.encoder.layer)


def test_bad_input(setup):
    model, _ = setup
    with pytest.raises(TypeError, match="no transformer.h / encoder.layer"):
        C.enable_checkpointing(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="every must be a positive int"):
        C.enable_checkpointing(model, every=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="real peak memory needs a CUDA GPU")
def test_cuda_peak_memory_falls():
    model = tiny_gpt(pretrained=False, n_layer=8).cuda()
    batch = tuple(t.cuda() for t in random_lm_batches(1, 16, 128, 4096)[0])
    peaks = []
    for ck in (False, True):
        (C.enable_checkpointing if ck else C.disable_checkpointing)(model)
        model.zero_grad(set_to_none=True)
        torch.cuda.reset_peak_memory_stats()
        causal_lm_loss(model, batch)[0].backward()
        peaks.append(torch.cuda.max_memory_allocated())
    assert peaks[1] < peaks[0]
