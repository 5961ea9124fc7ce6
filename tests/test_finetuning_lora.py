"""LoRA from scratch against peft 0.21's LoRA: outputs, gradients, merging, parameter counts, bad input."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import peft
import pytest
import torch
import transformers
from torch import nn

from course_lib import data
from course_lib.finetuning.classification import BertForSequenceClassification
from course_lib.finetuning.lora import (LoraConfig, LoraLinear, apply_lora, linear_module_names, lora_layers,
                                        merge_and_unload, merge_lora, parameter_counts, training_memory,
                                        unmerge_lora)
from course_lib.finetuning.ner import BertForTokenClassification
from course_lib.transformer.bert import BertConfig, BertModel
from course_lib.transformer.loading import load_hf_state_dict

ROOT = Path(__file__).resolve().parents[1]
HF_CFG = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
              max_position_embeddings=24, type_vocab_size=2, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0, attn_implementation="eager")


def randomise(model: nn.Module, seed: int = 0) -> None:
    """Every parameter random, biases and LayerNorm gains too (HF's init zeroes biases and hides bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if p.dim() == 1 and p.shape[0] == 32 else 0.0))


def copy_lora_from_peft(ours: nn.Module, peft_model) -> int:
    """Copy peft's A and B (adapter "default") into our LoraLinear layers of the same names."""
    base = peft_model.base_model.model
    layers = lora_layers(ours)
    with torch.no_grad():
        for name, layer in layers.items():
            theirs = base.get_submodule(name)
            layer.lora_A.weight.copy_(theirs.lora_A["default"].weight)
            layer.lora_B.weight.copy_(theirs.lora_B["default"].weight)
    return len(layers)


def batch(device="cpu"):
    torch.manual_seed(1)
    ids = torch.randint(1, 60, (3, 9), device=device)
    mask = torch.ones(3, 9, dtype=torch.long, device=device)
    mask[1, 6:], mask[2, 3:] = 0, 0                                      # padded rows
    return ids, mask


def pair(kind: str, r=4, alpha=8.0, device="cpu"):
    """(peft model over HF, ours with LoRA) with equal base weights and equal non-zero A, B."""
    hf_cfg = transformers.BertConfig(**HF_CFG, num_labels=3)
    torch.manual_seed(0)
    if kind == "bert":
        hf, ours = transformers.BertModel(hf_cfg, add_pooling_layer=True), BertModel(BertConfig.from_dict(HF_CFG))
        task, save = None, ()
    elif kind == "seq":
        hf = transformers.BertForSequenceClassification(hf_cfg)
        ours = BertForSequenceClassification(BertConfig.from_dict(HF_CFG), 3)
        task, save = "SEQ_CLS", ("classifier",)
    else:
        hf = transformers.BertForTokenClassification(hf_cfg)
        ours = BertForTokenClassification(BertConfig.from_dict(HF_CFG), 3)
        task, save = "TOKEN_CLS", ("classifier",)
    randomise(hf)
    load_hf_state_dict(ours, hf.state_dict())
    pcfg = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=["query", "value"],
                           task_type=task)
    pm = peft.get_peft_model(hf, pcfg)
    with torch.no_grad():                                                # B = 0 at init: make the test bite
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    apply_lora(ours, LoraConfig(r=r, lora_alpha=alpha, target_modules=("query", "value"), modules_to_save=save))
    assert copy_lora_from_peft(ours, pm) == 2 * HF_CFG["num_hidden_layers"]
    return pm.to(device).train(), ours.to(device).train()


def lora_grads(model, peft_side: bool):
    out = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = name.replace("base_model.model.", "").replace(".default", "")
            key = key.replace("classifier.modules_to_save.", "classifier.")
            out[key] = p.grad
    return out


@pytest.mark.parametrize("kind", ["bert", "seq", "token"])
def test_outputs_and_gradients_equal_peft(kind, device):
    pm, ours = pair(kind, device=device)
    ids, mask = batch(device)
    if kind == "bert":
        a = pm(input_ids=ids, attention_mask=mask).last_hidden_state
        b = ours(ids, attention_mask=mask).last_hidden_state
        w = torch.randn(a.shape, generator=torch.Generator().manual_seed(3)).to(device)
        loss_a, loss_b = (a * w).sum(), (b * w).sum()
    else:
        labels = torch.tensor([0, 2, 1], device=device) if kind == "seq" else \
            torch.where(mask.bool(), ids % 3, torch.full_like(ids, -100))
        out_a, out_b = pm(input_ids=ids, attention_mask=mask, labels=labels), ours(ids, mask, labels=labels)
        a, b, loss_a, loss_b = out_a.logits, out_b.logits, out_a.loss, out_b.loss
        torch.testing.assert_close(loss_b, loss_a, atol=1e-5, rtol=1e-5)
    real = mask.bool() if a.dim() == 3 else slice(None)
    torch.testing.assert_close(b[real], a[real], atol=1e-5, rtol=1e-5)
    loss_a.backward()
    loss_b.backward()
    ga, gb = lora_grads(pm, True), lora_grads(ours, False)
    assert set(ga) == set(gb) and len(gb) == 4 * 2 + (2 if kind != "bert" else 0)
    for name in gb:
        torch.testing.assert_close(gb[name], ga[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("kind", ["bert", "seq", "token"])
def test_trainable_parameter_counts_equal_peft(kind):
    pm, ours = pair(kind)
    trainable, total = parameter_counts(ours)
    peft_trainable, peft_total = pm.get_nb_trainable_parameters()
    assert trainable == peft_trainable
    head = sum(p.numel() for p in ours.classifier.parameters()) if kind != "bert" else 0
    # peft keeps a frozen copy of the original head next to the trained one ("modules_to_save")
    assert total + head == peft_total
    D, L, r = HF_CFG["hidden_size"], HF_CFG["num_hidden_layers"], 4
    assert trainable == L * 2 * r * (D + D) + head                      # r (d_in + d_out) per adapted layer


def test_minilm_counts_equal_peft_and_under_two_percent():
    path = data.minilm_path()
    hf = transformers.BertForSequenceClassification.from_pretrained(path, num_labels=6)
    pm = peft.get_peft_model(hf, peft.LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                                 task_type="SEQ_CLS"))
    ours = apply_lora(BertForSequenceClassification.from_pretrained(path, num_labels=6),
                      LoraConfig(r=8, lora_alpha=16, modules_to_save=("classifier",)))
    trainable, total = parameter_counts(ours)
    assert trainable == pm.get_nb_trainable_parameters()[0] == 6 * 2 * 8 * (384 + 384) + 384 * 6 + 6 == 76_038
    assert total == 22_713_216 + 384 * 6 + 6 + 6 * 2 * 8 * 768
    assert trainable / total < 0.02


def test_initial_lora_model_equals_base_model():
    torch.manual_seed(0)
    base = BertModel(BertConfig.from_dict(HF_CFG)).eval()
    randomise(base)
    ids, mask = batch()
    with torch.no_grad():
        before = base(ids, attention_mask=mask).last_hidden_state
        apply_lora(base, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.3))
        after = base(ids, attention_mask=mask).last_hidden_state
    assert torch.equal(before, after)                                  # B = 0: BA x = 0 exactly
    layer = base.encoder.layer[0].attention.self.query
    assert isinstance(layer, LoraLinear) and not layer.base_layer.weight.requires_grad
    assert layer.lora_A.weight.abs().sum() > 0 and layer.lora_B.weight.abs().sum() == 0


def test_merge_equals_unmerged_and_unmerge_restores(device):
    pm, ours = pair("seq", device=device)
    ours.eval()
    ids, mask = batch(device)
    w0 = ours.bert.encoder.layer[1].attention.self.value.base_layer.weight.clone()
    with torch.no_grad():
        unmerged = ours(ids, mask).logits
        merged = merge_lora(ours)(ids, mask).logits
        assert not torch.equal(ours.bert.encoder.layer[1].attention.self.value.base_layer.weight, w0)
        torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
        unmerge_lora(ours)
        torch.testing.assert_close(ours.bert.encoder.layer[1].attention.self.value.base_layer.weight, w0,
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(ours(ids, mask).logits, unmerged, atol=1e-6, rtol=0)
        plain = merge_and_unload(ours)
        assert not lora_layers(plain) and type(plain.bert.encoder.layer[0].attention.self.query) is nn.Linear
        torch.testing.assert_close(plain(ids, mask).logits, unmerged, atol=1e-5, rtol=1e-5)
        # and peft's own merge agrees with ours
        theirs = pm.eval().merge_and_unload()(input_ids=ids, attention_mask=mask).logits
        torch.testing.assert_close(plain(ids, mask).logits, theirs, atol=1e-5, rtol=1e-5)


def test_dropout_acts_on_the_lora_branch_only():
    _, ours = pair("bert")
    for layer in lora_layers(ours).values():
        layer.lora_dropout = nn.Dropout(0.5)
    ids, mask = batch()
    ours.train()
    torch.manual_seed(0)
    a = ours(ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(1)
    b = ours(ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(a, b)                                    # the branch is dropped at random ...
    for layer in lora_layers(ours).values():
        nn.init.zeros_(layer.lora_B.weight)
    torch.manual_seed(0)
    c = ours(ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(1)
    d = ours(ids, attention_mask=mask).last_hidden_state
    assert torch.equal(c, d)                                           # ... but the base path never is


def test_training_moves_only_lora_and_head():
    _, ours = pair("seq")
    frozen = {n: p.clone() for n, p in ours.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-2)
    ids, mask = batch()
    labels = torch.tensor([0, 2, 1])
    losses = []
    for _ in range(30):
        loss = ours(ids, mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in ours.named_parameters() if n in frozen)


def test_target_module_that_does_not_exist_lists_linear_names():
    model = BertForSequenceClassification(BertConfig.from_dict(HF_CFG), 3)
    with pytest.raises(ValueError, match=r"'qkv' does not exist.*available nn.Linear module names: "
                                         r"classifier, dense, key, query, value"):
        apply_lora(model, LoraConfig(target_modules=("qkv",)))
    with pytest.raises(ValueError, match="not an nn.Linear"):
        apply_lora(model, LoraConfig(target_modules=("LayerNorm",)))
    with pytest.raises(ValueError, match="module to save 'head' does not exist"):
        apply_lora(model, LoraConfig(modules_to_save=("head",)))
    assert all(p.requires_grad for p in model.parameters())          # a failed call changed nothing
    apply_lora(model, LoraConfig(target_modules=("bert.encoder.layer.0.attention.self.key",)))  # a full name
    assert list(lora_layers(model)) == ["bert.encoder.layer.0.attention.self.key"]
    with pytest.raises(ValueError, match="already has LoRA layers"):
        apply_lora(model, LoraConfig())
    assert linear_module_names(BertModel(BertConfig.from_dict(HF_CFG))) == ["dense", "key", "query", "value"]


@pytest.mark.parametrize("bad, words", [
    (dict(r=0), "positive integer"), (dict(r=-2), "positive integer"), (dict(r=2.5), "positive integer"),
    (dict(lora_alpha=0), "lora_alpha must be > 0"), (dict(lora_alpha=-1.0), "lora_alpha must be > 0"),
    (dict(lora_dropout=1.0), r"\[0, 1\)"), (dict(lora_dropout=-0.1), r"\[0, 1\)"),
    (dict(target_modules=()), "target_modules is empty")])
def test_bad_config_values_raise(bad, words):
    with pytest.raises(ValueError, match=words):
        LoraConfig(**bad)


def test_config_accepts_a_single_name_and_scaling():
    cfg = LoraConfig(r=4, lora_alpha=16, target_modules="query")
    assert cfg.target_modules == ("query",) and cfg.scaling == 4.0
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoraLinear(nn.Conv1d(2, 2, 1), 2, 2.0)


def test_training_memory_is_smaller_with_lora():
    torch.manual_seed(0)
    full = BertForSequenceClassification(BertConfig.from_dict(HF_CFG), 3).train()
    lora = apply_lora(BertForSequenceClassification(BertConfig.from_dict(HF_CFG), 3).train(),
                      LoraConfig(r=2, modules_to_save=("classifier",)))
    ids, mask = batch()
    b = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2])}
    m_full, m_lora = training_memory(full, b), training_memory(lora, b)
    assert m_full["gradients_and_adam"] == 12 * parameter_counts(full)[0]
    assert m_lora["gradients_and_adam"] == 12 * parameter_counts(lora)[0] < m_full["gradients_and_adam"] / 20
    assert 0 < m_lora["activations"] < m_full["activations"]          # frozen layers save no inputs
    assert all(p.grad is None for p in full.parameters())              # the probe leaves no gradients


def test_lora_benchmark_quick(capsys, one_torch_thread, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_lora", ROOT / "benchmarks" / "lora.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick", "--json", str(tmp_path / "lora.json")])
    out = capsys.readouterr().out
    assert json.loads((tmp_path / "lora.json").read_text()) == report
    assert "LoRA vs full" in out and "saved activations" in out
    full, lora = report["runs"]["full"], report["runs"]["lora"]
    assert lora["trainable_parameters"] == 76_038 and lora["trainable_percent"] < 2
    assert full["trainable_parameters"] == full["total_parameters"] == 22_715_526
    costs = report["step_costs"]
    assert costs["lora"]["grad_and_adam_MiB"] < costs["full"]["grad_and_adam_MiB"] / 100
    assert 0 < costs["lora"]["activation_MiB"] < costs["full"]["activation_MiB"]
