"""Magnitude pruning from scratch against torch.nn.utils.prune; structured FFN-channel pruning."""
from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils import prune

from course_lib.efficiency import pruning as P
from course_lib.transformer.bert import BertConfig, BertModel
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel

CFG = GPT2Config(vocab_size=300, n_positions=32, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
                 embd_pdrop=0.0, attn_pdrop=0.0)


def _gpt():
    torch.manual_seed(0)
    return GPT2LMHeadModel(CFG).eval()


def _bert():
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0)).eval()


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_layer_masks_equal_torch_l1_unstructured(amount):
    model = _gpt()
    ours = P.magnitude_masks(model, amount)
    ref = copy.deepcopy(model)
    for name, lin in P.prunable_linears(ref).items():
        prune.l1_unstructured(lin, "weight", amount=amount)
        assert torch.equal(lin.weight_mask, ours[name]), name


@pytest.mark.parametrize("amount", [0.2, 0.7])
def test_global_masks_equal_torch_global_unstructured(amount):
    model = _bert()
    ours = P.magnitude_masks(model, amount, scope="global")
    ref = copy.deepcopy(model)
    layers = P.prunable_linears(ref)
    prune.global_unstructured([(m, "weight") for m in layers.values()], prune.L1Unstructured, amount=amount)
    for name, lin in layers.items():
        assert torch.equal(lin.weight_mask, ours[name]), name
    per_layer = [float(m.mean()) for m in ours.values()]
    assert max(per_layer) - min(per_layer) > 0.01           # global pruning is uneven across layers


def test_apply_masks_and_sparsity():
    model = _gpt()
    P.apply_masks(model, P.magnitude_masks(model, 0.6))
    assert P.sparsity(model) == pytest.approx(0.6, abs=1e-3)


def test_masks_survive_fine_tuning():
    model = _gpt().train()
    masks = P.magnitude_masks(model, 0.5)
    P.apply_masks(model, masks, keep_during_training=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randint(0, CFG.vocab_size, (2, 17))
    for _ in range(3):
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, CFG.vocab_size), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    P.make_permanent(model)
    assert P.sparsity(model) == pytest.approx(0.5, abs=1e-3)
    for name, lin in P.prunable_linears(model).items():
        assert (lin.weight[masks[name] == 0] == 0).all() and "weight_orig" not in dict(lin.named_parameters())


@pytest.mark.parametrize("make", [_gpt, _bert])
def test_removing_zero_channels_changes_nothing(make):
    model = make()
    pairs = P._ffn_pairs(model)
    F = pairs[0][0].get_submodule(pairs[0][1]).out_features
    with torch.no_grad():
        for parent, a, b in pairs:                       # silence a quarter of the channels by hand
            parent.get_submodule(a).weight[: F // 4] = 0
            parent.get_submodule(a).bias[: F // 4] = 0
            parent.get_submodule(b).weight[:, : F // 4] = 0
    x = torch.randint(1, 300, (2, 10))
    with torch.no_grad():
        before = model(x) if make is _gpt else model(x).last_hidden_state
        n_before = sum(p.numel() for p in model.parameters())
        P.prune_ffn_channels(model, 0.25)
        after = model(x) if make is _gpt else model(x).last_hidden_state
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    D = pairs[0][0].get_submodule(pairs[0][1]).in_features
    removed = len(pairs) * (F // 4) * (2 * D + 1)             # a row of W1, its bias, a column of W2
    assert n_before - sum(p.numel() for p in model.parameters()) == removed
    assert pairs[0][0].get_submodule(pairs[0][1]).out_features == F - F // 4


def test_structured_pruning_keeps_the_strongest_channels():
    model = _gpt()
    mlp = model.transformer.h[0].mlp
    scores = P.ffn_channel_scores(mlp.c_fc, mlp.c_proj)
    best = mlp.c_fc.weight[scores.argmax()].clone()
    P.prune_ffn_channels(model, 0.5)
    assert any(torch.equal(row, best) for row in model.transformer.h[0].mlp.c_fc.weight)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="amount must be a fraction in"):
        P.magnitude_mask(torch.ones(3), 1.5)
    with pytest.raises(ValueError, match="scope must be"):
        P.magnitude_masks(_gpt(), 0.5, scope="row")
    with pytest.raises(TypeError, match="knows our GPT2LMHeadModel"):
        P.prunable_linears(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="keep at least one"):
        P.prune_ffn_channels(_gpt(), 1.0)
    with pytest.raises(KeyError, match="masks name layers"):
        P.apply_masks(_gpt(), {"9.nope": torch.ones(1)})
