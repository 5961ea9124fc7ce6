"""Chapter 5 sequence classification: our BertForSequenceClassification against Hugging Face's,
the fine-tuning loop against Hugging Face's recipe, data checks, metrics and baselines."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from course_lib import data
from course_lib.finetuning import loop
from course_lib.finetuning.classification import (BertForSequenceClassification, check_labels, count_parameters,
                                                  freeze_lower_layers)
from course_lib.finetuning.data import (check_columns, check_texts, check_tokenizer, encode_labels, make_batches,
                                        tokenize_texts)
from course_lib.transformer.bert import BertConfig
from course_lib.transformer.loading import load_hf_state_dict

HF_CFG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=40, type_vocab_size=2, pad_token_id=0)


def pair(num_labels=3, device="cpu", dropout=0.1):
    """HF and our classifier with the same randomised weights (biases and LayerNorm gains too)."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(**HF_CFG, num_labels=num_labels, hidden_dropout_prob=dropout,
                                  attention_probs_dropout_prob=dropout)
    hf = transformers.BertForSequenceClassification(cfg)
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(torch.randn_like(p) * 0.1 + (1.0 if p.dim() == 1 and p.shape[0] == 32 else 0.0))
    ours = BertForSequenceClassification(BertConfig.from_dict(cfg.to_dict()), num_labels)
    load_hf_state_dict(ours, hf.state_dict())
    return hf.to(device).eval(), ours.to(device).eval()


def padded_batch(device="cpu"):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 99, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    return ids.to(device), mask.to(device), torch.tensor([0, 2, 1], device=device)


def test_logits_and_loss_equal_huggingface(device):
    hf, ours = pair(device=device)
    ids, mask, y = padded_batch(device)
    with torch.no_grad():
        a = hf(input_ids=ids, attention_mask=mask, labels=y)
        b = ours(input_ids=ids, attention_mask=mask, labels=y)
    torch.testing.assert_close(b.logits, a.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.loss, a.loss, atol=1e-5, rtol=1e-5)


def test_gradients_equal_huggingface():
    hf, ours = pair(dropout=0.0)
    ids, mask, y = padded_batch()
    hf(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
    ours(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
    for name in ["classifier.weight", "bert.pooler.dense.weight", "bert.encoder.layer.0.attention.self.query.weight",
                 "bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight"]:
        torch.testing.assert_close(dict(ours.named_parameters())[name].grad,
                                   dict(hf.named_parameters())[name].grad, atol=1e-5, rtol=1e-4)


def test_parameter_names_round_trip_into_huggingface():
    hf, ours = pair()
    assert set(ours.state_dict()) == set(hf.state_dict()) - {"bert.embeddings.position_ids"}
    hf2 = transformers.BertForSequenceClassification(hf.config)
    hf2.load_state_dict(ours.state_dict(), strict=False)
    ids, mask, _ = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(hf2.eval()(input_ids=ids, attention_mask=mask).logits,
                                   hf(input_ids=ids, attention_mask=mask).logits)


def test_from_pretrained_minilm_equals_huggingface_auto_model(one_torch_thread):
    path = data.minilm_path()
    torch.manual_seed(0)
    ours = BertForSequenceClassification.from_pretrained(path, num_labels=6).eval()
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=6).eval()
    hf.classifier.load_state_dict(ours.classifier.state_dict())        # the one new (random) layer
    tok = transformers.AutoTokenizer.from_pretrained(path)
    enc = tok(["What is the capital of France ?", "How many legs does a spider have ?"], padding=True,
              return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(ours(**enc).logits, hf(**enc).logits, atol=1e-5, rtol=1e-4)
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters())
    assert ours.classifier.weight.std().item() == pytest.approx(0.02, rel=0.2)       # N(0, 0.02) init


def test_from_random_has_the_same_architecture_and_different_weights():
    path = data.minilm_path()
    a = BertForSequenceClassification.from_pretrained(path, num_labels=2)
    b = BertForSequenceClassification.from_random(path, num_labels=2, seed=0)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    assert not torch.allclose(a.bert.encoder.layer[0].attention.self.query.weight,
                              b.bert.encoder.layer[0].attention.self.query.weight)


def test_freeze_lower_layers_counts():
    _, ours = pair()
    total = count_parameters(ours)
    assert freeze_lower_layers(ours, 0) == total
    head = sum(p.numel() for p in ours.classifier.parameters()) + sum(p.numel() for p in ours.bert.pooler.parameters())
    assert freeze_lower_layers(ours, 2) == head
    assert not ours.bert.embeddings.word_embeddings.weight.requires_grad
    with pytest.raises(ValueError, match="num_frozen must be in 0..2"):
        freeze_lower_layers(ours, 3)


# ----------------------------------------------------------------------------- bad input

def test_labels_outside_the_label_set_are_reported():
    with pytest.raises(ValueError, match=r"outside the label set.*'spam'.*extend label_names"):
        encode_labels(["pos", "spam", "neg"], ["neg", "pos"])
    with pytest.raises(ValueError, match="outside the label set"):
        encode_labels([0, 1, 2], ["neg", "pos"])
    assert encode_labels(["pos", "neg", 1], ["neg", "pos"]).tolist() == [1, 0, 1]
    _, ours = pair(num_labels=3)
    ids, mask, _ = padded_batch()
    with pytest.raises(ValueError, match=r"labels \[5\] are outside the label set 0..2.*num_labels=3"):
        ours(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        BertForSequenceClassification(BertConfig(**{k: v for k, v in HF_CFG.items()}), 1)
    check_labels(torch.tensor([0, -100, 2]), 3, ignore_index=-100)


def test_empty_texts_are_reported():
    with pytest.raises(ValueError, match=r"1 empty text\(s\) at positions \[1\].*remove those rows"):
        check_texts(["fine", "   ", "ok"])
    with pytest.raises(ValueError, match="no texts given"):
        check_texts([])
    with pytest.raises(TypeError, match="texts must be str.*NaN"):
        check_texts(["a", float("nan")])
    tok = transformers.AutoTokenizer.from_pretrained(data.minilm_path())
    with pytest.raises(ValueError, match="empty text"):
        tokenize_texts(tok, ["a good film", ""])


def test_tokenizer_vocabulary_must_match_the_embeddings():
    tok = transformers.AutoTokenizer.from_pretrained(data.minilm_path())
    _, ours = pair()                                  # 99-row embedding table
    with pytest.raises(ValueError, match=r"tokenizer has 30522 tokens but the model's embedding table has 99 rows"):
        check_tokenizer(tok, ours)
    check_tokenizer(tok, 30522)


def test_missing_columns_are_reported():
    import pandas as pd
    df = pd.DataFrame({"sentence": ["a"], "label": [0]})
    with pytest.raises(KeyError, match=r"no column \['text'\].*'sentence'.*text_column="):
        check_columns(df, ["text", "label"])
    with pytest.raises(TypeError, match="expected a DataFrame"):
        check_columns(3, ["text"])


# ----------------------------------------------------------------------------- batches and loop

def test_make_batches_pads_each_batch_to_its_longest_and_keeps_the_index():
    ids = [[101, 5, 102], [101, 5, 6, 7, 8, 102], [101, 102], [101, 9, 9, 102]]
    batches = make_batches(ids, np.array([0, 1, 0, 1]), batch_size=2)
    assert [tuple(b["input_ids"].shape) for b in batches] == [(2, 3), (2, 6)]     # sorted by length
    assert batches[0]["index"].tolist() == [2, 0] and batches[1]["index"].tolist() == [3, 1]
    assert batches[1]["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    assert batches[1]["labels"].tolist() == [1, 1]
    token = make_batches(ids[:2], [[0, 1, 0], [0, 1, 1, 1, 1, 0]], batch_size=2, sort_by_length=False)
    assert token[0]["labels"][0].tolist() == [0, 1, 0, -100, -100, -100]
    import pandas as pd
    shuffled = pd.Series([0, 1, 0, 1], index=[7, 5, 9, 2])          # a filtered DataFrame column: by position
    assert make_batches(ids, shuffled, batch_size=4)[0]["labels"].tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="4 examples but 3 labels"):
        make_batches(ids, [0, 1, 0])


def test_linear_schedule_equals_transformers():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, num_warmup_steps=3, num_training_steps=10)
    expected = [sched.lr_lambdas[0](s) for s in range(12)]
    assert [loop.linear_schedule(s, 3, 10) for s in range(12)] == pytest.approx(expected)


def test_fit_equals_the_hugging_face_recipe_step_for_step(one_torch_thread):
    """Same batch order, no dropout: our loop = torch AdamW + HF's linear schedule + clip_grad_norm_."""
    hf, ours = pair(dropout=0.0)
    ids, mask, y = padded_batch()
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids), "labels": y}
    hist = loop.fit(ours, [batch], epochs=6, lr=1e-3, warmup_ratio=0.34, weight_decay=0.01, max_grad_norm=0.5,
                    progress=None)
    decay = [p for n, p in hf.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in hf.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    sched = transformers.get_linear_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=6)
    hf.train()
    losses = []
    for _ in range(6):
        loss = hf(**batch).loss
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 0.5)
        opt.step()
        sched.step()
    assert hist.train_loss == pytest.approx(losses, rel=1e-4, abs=1e-5)
    for name, p in hf.named_parameters():
        torch.testing.assert_close(dict(ours.named_parameters())[name], p, atol=2e-5, rtol=1e-4)


def test_fit_learns_a_separable_task_and_evaluate_keeps_the_order(one_torch_thread, capsys):
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**HF_CFG), 2)
    rng = np.random.default_rng(0)
    lo = lambda k: 10 + 40 * (k % 2)                     # noqa: E731  class 0: ids 10..49, class 1: 50..89
    ids = [[1] + rng.integers(lo(k), lo(k) + 40, rng.integers(2, 8)).tolist() for k in range(96)]
    y = np.arange(96) % 2
    train = make_batches(ids[:64], y[:64], batch_size=16)
    valid = make_batches(ids[64:], y[64:], batch_size=16)
    before = loop.evaluate(model, valid)
    hist = loop.fit(model, train, valid, epochs=5, lr=1e-2, seed=0)
    after = loop.evaluate(model, valid)
    assert after["accuracy"] == 1.0 and before["accuracy"] < 0.8
    assert after["loss"] < 0.6 * before["loss"]
    assert after["labels"].tolist() == y[64:].tolist()                 # original order restored
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("step    20  epoch 5.00  train loss")
    assert hist.eval_step == [4, 8, 12, 16, 20] and len(hist.train_loss) == 20


def test_fit_stops_on_a_non_finite_loss():
    _, ours = pair()
    with torch.no_grad():
        ours.classifier.bias.fill_(float("nan"))
    ids, mask, y = padded_batch()
    with pytest.raises(FloatingPointError, match="the loss became nan at step 0; lower the learning rate"):
        loop.fit(ours, [{"input_ids": ids, "attention_mask": mask, "labels": y}], epochs=1, progress=None)


def test_fit_rejects_batches_without_labels():
    _, ours = pair()
    ids, mask, _ = padded_batch()
    with pytest.raises(ValueError, match="no 'labels'"):
        loop.fit(ours, [{"input_ids": ids, "attention_mask": mask}], epochs=1)
