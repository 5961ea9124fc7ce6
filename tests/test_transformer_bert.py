"""Our BERT against Hugging Face BertModel: the real MiniLM weights and random configs; the loader."""
from __future__ import annotations

import pytest
import torch
import transformers

from course_lib import data
from course_lib.transformer.bert import BertConfig, BertModel
from course_lib.transformer.loading import load_hf_state_dict

SENTENCES = ["The Transformer replaced recurrence with attention.",
             "Short one.",
             "Layer normalisation keeps every token's features on one scale, and residuals add."]


@pytest.fixture(scope="module")
def minilm():
    path = data.minilm_path()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = hf(**batch, output_attentions=True)
    return path, batch, expected


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_minilm_hidden_states_equal_huggingface(minilm, impl, device):
    path, batch, expected = minilm
    assert (batch["attention_mask"] == 0).any()                      # the batch is padded
    ours = BertModel.from_pretrained(path, attn_implementation=impl).to(device)
    with torch.no_grad():
        out = ours(**{k: v.to(device) for k, v in batch.items()})
    diff = (out.last_hidden_state.cpu() - expected.last_hidden_state).abs()
    real = batch["attention_mask"].bool()
    # every position with the same (eager) attention; real tokens with the fused kernel (the hidden
    # states of padding positions differ by ~5e-5 between HF's own eager and sdpa paths as well)
    assert (diff.max() if impl == "eager" else diff[real].max()) <= 1e-5
    assert (out.pooler_output.cpu() - expected.pooler_output).abs().max() <= 1e-5


def test_minilm_attention_weights_equal_huggingface(minilm):
    path, batch, expected = minilm
    ours = BertModel.from_pretrained(path, attn_implementation="eager")
    with torch.no_grad():
        out = ours(**batch, output_attentions=True)
    assert len(out.attentions) == 6
    for a, b in zip(out.attentions, expected.attentions):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # padding keys get exactly zero weight
    assert out.attentions[0][1, :, :, batch["attention_mask"][1] == 0].abs().max() == 0


@pytest.mark.parametrize("sizes", [(32, 1, 2, 64), (48, 3, 4, 96), (64, 2, 8, 100)],
                         ids=lambda s: "D{}-L{}-H{}-F{}".format(*s))
def test_random_bert_configs_equal_huggingface(sizes, device):
    D, L, H, Fw = sizes
    torch.manual_seed(sum(sizes))
    hf_cfg = transformers.BertConfig(vocab_size=97, hidden_size=D, num_hidden_layers=L, num_attention_heads=H,
                                     intermediate_size=Fw, max_position_embeddings=40, type_vocab_size=3,
                                     attn_implementation="eager")
    hf = transformers.BertModel(hf_cfg).to(device).eval()
    ours = BertModel(BertConfig.from_dict(hf_cfg.to_dict())).to(device)
    load_hf_state_dict(ours, hf.state_dict()).eval()
    ids = torch.randint(1, 97, (3, 11), device=device)
    types = torch.randint(0, 3, (3, 11), device=device)
    mask = torch.ones(3, 11, dtype=torch.long, device=device)
    mask[1, 7:], mask[2, 3:] = 0, 0
    with torch.no_grad():
        a = hf(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        b = ours(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    assert (a - b).abs().max() <= 1e-5


def test_gradients_equal_huggingface():
    torch.manual_seed(0)
    hf_cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16,
                                     attn_implementation="eager", hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    hf = transformers.BertModel(hf_cfg)
    ours = load_hf_state_dict(BertModel(BertConfig.from_dict(hf_cfg.to_dict())), hf.state_dict())
    ids = torch.randint(0, 50, (2, 9))
    hf(ids).last_hidden_state.pow(2).sum().backward()
    ours(ids).last_hidden_state.pow(2).sum().backward()
    hf_params = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, hf_params[name].grad, atol=1e-4, rtol=1e-4, msg=name)


def test_bad_config_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="hidden_size=100 is not divisible by num_attention_heads=12"):
        BertConfig(hidden_size=100, num_attention_heads=12)
    model = BertModel(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=8))
    with pytest.raises(ValueError, match="input has 9 tokens but the model has max_position_embeddings=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(torch.zeros(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        model(torch.zeros(1, 5, dtype=torch.long), output_attentions=True)


def _small():
    cfg = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=8)
    return cfg, BertModel(cfg)


def test_loader_names_missing_unexpected_and_misshaped_tensors():
    cfg, model = _small()
    good = {k: v.clone() for k, v in model.state_dict().items()}
    missing = {k: v for k, v in good.items() if "layer.1.attention.self.key" not in k}
    with pytest.raises(ValueError, match=r"2 missing tensors: encoder\.layer\.1\.attention\.self\.key\.bias, "
                                         r"encoder\.layer\.1\.attention\.self\.key\.weight"):
        load_hf_state_dict(model, missing)
    with pytest.raises(ValueError, match=r"1 unexpected tensors: cls\.predictions\.bias"):
        load_hf_state_dict(model, {**good, "cls.predictions.bias": torch.zeros(20)})
    bad = {**good, "encoder.layer.0.intermediate.dense.weight": torch.zeros(16, 32)}
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight expected \(32, 16\) "
                                         r"got \(16, 32\)"):
        load_hf_state_dict(model, bad)
    # a failed load leaves the model untouched; a prefixed checkpoint loads with strip_prefix
    other = BertModel(cfg)
    load_hf_state_dict(other, {"bert." + k: v for k, v in good.items()}, strip_prefix="bert.")
    for k, v in other.state_dict().items():
        assert torch.equal(v, good[k])
