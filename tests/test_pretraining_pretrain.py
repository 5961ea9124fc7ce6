"""The pre-training pipeline: packing, pairs, batches, loss, a short training run, the MiniLM head."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from course_lib.data import load_wikitext2, minilm_path
from course_lib.pretraining import minilm_head, nsp, pretrain
from course_lib.pretraining.heads import BertForPreTraining
from course_lib.transformer.bert import BertConfig
from course_lib.transformer.training import TrainConfig, train


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(minilm_path())


@pytest.fixture(scope="module")
def valid_examples(tok):
    docs = nsp.split_documents(load_wikitext2("valid"))
    ids = pretrain.tokenize_documents(docs, tok)
    return pretrain.build_nsp_examples(ids, max_seq_length=64, cls_token_id=tok.cls_token_id,
                                       sep_token_id=tok.sep_token_id, rng=np.random.default_rng(0))


def test_pack_segments_keeps_order_and_length():
    sents = [[1, 2, 3], [4, 5], [6] * 9, [7]]
    segs = pretrain.pack_segments(sents, 5)
    assert [x for s in segs for x in s] == [x for s in sents for x in s]
    assert all(len(s) <= 5 for s in segs) and segs[0] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="target_length must be >= 1"):
        pretrain.pack_segments(sents, 0)


def test_nsp_examples_fit_and_have_token_types(valid_examples, tok):
    ex = valid_examples
    assert len(ex) > 5000 and abs(np.mean(ex.next_sentence_label) - 0.5) < 0.03
    for ids, types in zip(ex.input_ids[:500], ex.token_type_ids[:500]):
        assert len(ids) <= 64 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        first_sep = ids.index(tok.sep_token_id)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    batch = pretrain.collate_pairs(ex, [0, 1, 2], tok.pad_token_id)
    T = max(len(ex.input_ids[i]) for i in range(3))
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, T)
    assert int(batch["attention_mask"].sum()) == sum(len(ex.input_ids[i]) for i in range(3))


def test_fixed_validation_batches_are_reproducible(valid_examples, tok):
    a = pretrain.fixed_validation_batches(valid_examples, 16, tok, limit=48)
    b = pretrain.fixed_validation_batches(valid_examples, 16, tok, limit=48)
    assert len(a) == 3 and all(torch.equal(x["input_ids"], y["input_ids"]) and torch.equal(x["labels"], y["labels"])
                               for x, y in zip(a, b))


def test_short_pretraining_raises_masked_token_accuracy(valid_examples, tok, one_torch_thread):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=64))
    batches = pretrain.MaskedPairBatches(valid_examples, 16, tok, seed=0)
    held_out = pretrain.fixed_validation_batches(valid_examples, 64, tok, limit=256)
    before = pretrain.evaluate_pretraining(model, held_out)
    cfg = TrainConfig(max_steps=40, learning_rate=3e-3, warmup_steps=5, logging_steps=40)
    history = train(model, cfg, batches, loss_fn=pretrain.pretraining_loss, log=None)
    after = pretrain.evaluate_pretraining(model, held_out)
    assert history.train_loss[-1] < 10.5 < 11.0 < np.log(len(tok)) + np.log(2) + 0.1
    assert after["mlm_accuracy"] > before["mlm_accuracy"] + 0.03         # learns at least "the", ",", "."
    assert after["mlm_loss"] < before["mlm_loss"] - 1.0
    guesses = pretrain.fill_mask(model, tok, "the [MASK] of the city .", top_k=3)
    assert len(guesses) == 1 and len(guesses[0]) == 3
    with pytest.raises(ValueError, match=r"has no \[MASK\] token to fill"):
        pretrain.fill_mask(model, tok, "nothing to fill")


def test_minilm_random_head_is_junk_and_head_training_helps(tok, one_torch_thread):
    model = minilm_head.minilm_for_masked_lm(head=None, seed=0)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    sents = [s for d in nsp.split_documents(load_wikitext2("valid"))[:3] for s in d][:48]
    x, y = minilm_head.collect_masked_features(model, tok, sents, seed=0)
    assert x.shape == (len(y), 384) and len(y) > 40
    before = minilm_head.head_accuracy(model, x, y)
    n = minilm_head.freeze_encoder(model)
    assert n == 384 * 384 + 384 + 2 * 384 + 30522                         # transform + LayerNorm + output bias
    losses = minilm_head.train_head(model, x, y, steps=30, batch_size=64, lr=3e-3)
    assert before < 0.02 and losses[-1] < losses[0] - 1.0
    assert minilm_head.head_accuracy(model, x, y) > before + 0.1         # fits the cached positions
    with pytest.raises(ValueError, match="needs at least one sentence"):
        minilm_head.collect_masked_features(model, tok, [])


def test_shipped_tiny_bert_checkpoint_reproduces_its_recorded_accuracy(valid_examples, tok, one_torch_thread):
    from course_lib.transformer.checkpoint import checkpoint_path
    folder = checkpoint_path("tiny_bert")
    record = minilm_head.read_history(folder)
    model = minilm_head.load_tiny_bert()                                   # checksums verified
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert (folder / "model.safetensors").stat().st_size < 10e6           # float16 storage
    docs = nsp.split_documents(load_wikitext2("valid"))
    ex = pretrain.build_nsp_examples(pretrain.tokenize_documents(docs, tok), max_seq_length=64,
                                     cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                                     rng=np.random.default_rng(1))         # the script's seed + 1
    got = pretrain.evaluate_pretraining(model, pretrain.fixed_validation_batches(ex, 64, tok, limit=1024))
    assert abs(got["mlm_accuracy"] - record["eval_slice_final"]["mlm_accuracy"]) < 0.005
    accuracies = [m["mlm_accuracy"] for m in record["eval_metrics"]]
    assert accuracies[-1] > accuracies[0] + 0.05                           # masked-token accuracy rose


def test_shipped_minilm_head_beats_a_random_head(tok, one_torch_thread):
    trained = minilm_head.minilm_for_masked_lm(head="shipped")
    random_head = minilm_head.minilm_for_masked_lm(head=None)
    sents = [s for d in nsp.split_documents(load_wikitext2("test"))[:2] for s in d][:40]
    x, y = minilm_head.collect_masked_features(random_head, tok, sents, seed=3)
    assert minilm_head.head_accuracy(trained, x, y) > minilm_head.head_accuracy(random_head, x, y) + 0.05
