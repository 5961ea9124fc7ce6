"""Token classification: our BertForTokenClassification against Hugging Face's, WordPiece label alignment
against ``word_ids()``, seqeval scores, the split, the gazetteer baseline and bad input."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import transformers

from course_lib import data
from course_lib.finetuning.loop import fit
from course_lib.finetuning.ner import (BertForTokenClassification, GazetteerBaseline, TokenClassifierOutput,
                                       align_labels, check_sentences, encode_ner, hf_word_ids, label_list,
                                       ner_scores, predict_tags, split_sentences, wordpiece_word_ids)
from course_lib.tokenization.wordpiece import WordPieceTokenizer
from course_lib.transformer.bert import BertConfig
from course_lib.transformer.loading import load_hf_state_dict

ROOT = Path(__file__).resolve().parents[1]
HF_CFG = dict(vocab_size=70, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
              max_position_embeddings=24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
              attn_implementation="eager")


@pytest.fixture(scope="module")
def wnut():
    return data.load_wnut16()


@pytest.fixture(scope="module")
def tokenizers():
    path = data.minilm_path()
    return transformers.AutoTokenizer.from_pretrained(path), WordPieceTokenizer.from_pretrained(path)


def hf_pair(device="cpu", num_labels=5):
    torch.manual_seed(0)
    hf = transformers.BertForTokenClassification(transformers.BertConfig(**HF_CFG, num_labels=num_labels))
    with torch.no_grad():                                   # biases and LayerNorm gains random too
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ours = BertForTokenClassification(BertConfig.from_dict(HF_CFG), num_labels)
    load_hf_state_dict(ours, hf.state_dict())
    return hf.to(device).train(), ours.to(device).train()


def test_logits_loss_and_gradients_equal_huggingface(device):
    hf, ours = hf_pair(device)
    assert set(dict(ours.named_parameters())) == set(dict(hf.named_parameters()))   # bert.* and classifier
    ids = torch.randint(1, 70, (3, 10), device=device)
    mask = torch.ones_like(ids)
    mask[1, 7:], mask[2, 4:] = 0, 0
    labels = torch.randint(0, 5, ids.shape, device=device).masked_fill(mask == 0, -100)
    labels[0, 3] = -100                                                      # a continuation piece
    a = hf(input_ids=ids, attention_mask=mask, labels=labels)
    b = ours(ids, attention_mask=mask, labels=labels)
    assert isinstance(b, TokenClassifierOutput) and b.logits.shape == (3, 10, 5)
    real = mask.bool()
    torch.testing.assert_close(b.logits[real], a.logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.loss, a.loss, atol=1e-6, rtol=1e-5)
    a.loss.backward()
    b.loss.backward()
    for name in ("classifier.weight", "bert.encoder.layer.0.attention.self.query.weight",
                 "bert.embeddings.word_embeddings.weight"):
        torch.testing.assert_close(ours.get_parameter(name).grad, hf.get_parameter(name).grad,
                                   atol=1e-5, rtol=1e-4, msg=name)


def test_from_pretrained_minilm_equals_huggingface():
    path = data.minilm_path()
    hf = transformers.BertForTokenClassification.from_pretrained(path, num_labels=21).eval()
    ours = BertForTokenClassification.from_pretrained(path, num_labels=21).eval()
    assert ours.bert.pooler is None and ours.training is False
    ours.classifier.load_state_dict(hf.classifier.state_dict())             # the head is new on both sides
    tok = transformers.AutoTokenizer.from_pretrained(path)
    enc = tok(["Going to see Arctic Monkeys in Sheffield", "lol"], padding=True, return_tensors="pt")
    with torch.no_grad():
        a, b = hf(**enc).logits, ours(**enc).logits
    real = enc["attention_mask"].bool()
    assert (a[real] - b[real]).abs().max() <= 1e-5


def test_our_wordpiece_word_ids_equal_huggingface_on_all_of_wnut16(wnut, tokenizers):
    hf, ours = tokenizers
    for max_length, sents in ((None, wnut), (12, wnut[:400])):
        for sent in sents:
            words = [w for w, _ in sent]
            ids_a, wid_a = hf_word_ids(hf, words, max_length)
            ids_b, wid_b = wordpiece_word_ids(ours, words, max_length)
            assert ids_b == ids_a and wid_b == wid_a, words
    ids, wid = wordpiece_word_ids(ours, ["@paulwalk", "Kardashians", "!"])
    assert wid == [None, 0, 0, 0, 1, 1, 1, 1, 2, None]         # '@' 'paul' '##walk' | 'ka' '##rda' ... | '!'


def test_align_labels_marks_first_pieces_only():
    assert align_labels([None, 0, 0, 1, 2, 2, 2, None], [3, 5, 1]) == [-100, 3, -100, 5, 1, -100, -100, -100]
    assert align_labels([None, None], []) == [-100, -100]


def test_encode_ner_same_batches_from_both_tokenizers(wnut, tokenizers):
    hf, ours = tokenizers
    names = label_list(wnut)
    assert names[0] == "O" and len(names) == 21 and "B-geo-loc" in names and "I-tvshow" in names
    a = encode_ner(wnut[:40], hf, names, max_length=32, batch_size=16)
    b = encode_ner(wnut[:40], ours, names, max_length=32, batch_size=16)
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert x.keys() == y.keys() >= {"input_ids", "attention_mask", "labels", "word_ids", "index"}
        assert all(torch.equal(x[k], y[k]) for k in x)
    # every word whose first piece survives truncation carries exactly one label
    n_words = sum(min(len(s), 30) for s in wnut[:40])
    assert sum(int((bt["labels"] != -100).sum()) for bt in a) <= n_words


def test_predict_tags_maps_first_pieces_back_to_words(wnut, tokenizers):
    hf, _ = tokenizers
    names = label_list(wnut)
    sents = wnut[:30]
    batches = encode_ner(sents, hf, names, max_length=20, batch_size=8)

    class Oracle(torch.nn.Module):                      # predicts the aligned labels (first pieces)
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.lookup = {tuple(b["input_ids"][r].tolist()): b["labels"][r] for b in batches
                           for r in range(len(b["index"]))}

        def forward(self, input_ids, attention_mask=None, **_):
            lab = torch.stack([self.lookup[tuple(row.tolist())] for row in input_ids]).clamp(min=0)
            return TokenClassifierOutput(None, torch.nn.functional.one_hot(lab, len(names)).float())

    pred = predict_tags(Oracle(), batches, names, sentence_lengths=[len(s) for s in sents])
    truth = [[t for _, t in s] for s in sents]
    for s, p, t in zip(sents, pred, truth):
        _, wid = hf_word_ids(hf, [w for w, _ in s], 20)
        kept = {w for w in wid if w is not None}
        assert [p[i] for i in kept] == [t[i] for i in kept]              # exact where the word was seen
        assert all(p[i] == "O" for i in range(len(s)) if i not in kept)  # truncated words: "O"
    with pytest.raises(ValueError, match="sentence_lengths"):
        predict_tags(Oracle(), batches, names)


def test_ner_scores_are_entity_level():
    true = [["B-person", "I-person", "O", "B-geo-loc"], ["B-company", "O"]]
    pred = [["B-person", "I-person", "O", "O"], ["B-company", "O"]]
    s = ner_scores(true, pred)
    assert (s["precision"], s["recall"], round(s["f1"], 4)) == (1.0, 2 / 3, 0.8)
    half = ner_scores([["B-person", "I-person"]], [["B-person", "O"]])        # wrong boundary: no credit
    assert half["f1"] == 0.0
    with pytest.raises(ValueError, match="same number of words"):
        ner_scores(true, [pred[0]])


def test_split_is_fixed_disjoint_and_complete(wnut):
    train, test = split_sentences(wnut, test_fraction=0.2, seed=0)
    assert (len(train), len(test)) == (1915, 479)
    again = split_sentences(wnut, test_fraction=0.2, seed=0)
    assert again[1] == test and split_sentences(wnut, seed=1)[1] != test
    ids = {id(s) for s in train} | {id(s) for s in test}
    assert len(ids) == len(wnut)


def test_gazetteer_memorises_training_entities(wnut):
    train, test = split_sentences(wnut)
    base = GazetteerBaseline().fit(train)
    truth = lambda ss: [[t for _, t in s] for s in ss]  # noqa: E731
    on_train = ner_scores(truth(train), base.predict(train))["f1"]
    on_test = ner_scores(truth(test), base.predict(test))
    assert on_train > 0.9 and 0.2 < on_test["f1"] < on_train          # memorising is not generalising
    assert on_test["precision"] > on_test["recall"]
    sent = [("I", "O"), ("love", "O"), ("new", "O"), ("york", "O")]
    assert base.lexicon.get(("new", "york")) == "geo-loc"
    assert base.predict([sent]) == [["O", "O", "B-geo-loc", "I-geo-loc"]]


def test_fine_tuning_minilm_lowers_the_loss(wnut, tokenizers, one_torch_thread):
    hf, _ = tokenizers
    names = label_list(wnut)
    sents = [s for s in wnut if any(t != "O" for _, t in s)][:8]
    batches = encode_ner(sents, hf, names, max_length=24, batch_size=8)
    model = BertForTokenClassification.from_pretrained(data.minilm_path(), num_labels=len(names))
    hist = fit(model, batches, epochs=8, lr=1e-3, warmup_ratio=0.0, progress=None)
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]


def test_bad_input_gives_clear_errors(wnut, tokenizers):
    hf, ours = tokenizers
    names = label_list(wnut)
    with pytest.raises(ValueError, match="outside the label set"):
        encode_ner([[("Paris", "B-city")]], hf, names)
    with pytest.raises(ValueError, match="sentence 1 is empty"):
        encode_ner([wnut[0], []], hf, names)
    with pytest.raises(ValueError, match="no sentences"):
        check_sentences([])
    with pytest.raises(ValueError, match="'tokens' and 'ner_tags' columns"):
        check_sentences([{"tokens": ["a"], "ner_tags": [0]}])
    with pytest.raises(ValueError, match="not BIO tags"):
        label_list([[("Paris", "LOC")]])
    small = BertForTokenClassification(BertConfig.from_dict(HF_CFG), len(names))
    with pytest.raises(ValueError, match="embedding table has 70 rows"):
        encode_ner(wnut[:2], hf, names, model=small)
    with pytest.raises(ValueError, match="outside the label set 0..20"):
        small(torch.ones(1, 3, dtype=torch.long), labels=torch.tensor([[0, 21, -100]]))
    with pytest.raises(ValueError, match="shape of input_ids"):
        small(torch.ones(1, 3, dtype=torch.long), labels=torch.tensor([0]))
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        BertForTokenClassification(BertConfig.from_dict(HF_CFG), 1)
    class SlowTokenizer:                                 # a tokenizer without word_ids() (a "slow" one)
        is_fast = False
    with pytest.raises(TypeError, match="gives no word_ids"):
        encode_ner(wnut[:2], SlowTokenizer(), names)
    with pytest.raises(ValueError, match="test_fraction"):
        split_sentences(wnut, test_fraction=1.0)


def test_ner_benchmark_quick(capsys, one_torch_thread, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_ner", ROOT / "benchmarks" / "ner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick", "--json", str(tmp_path / "ner.json")])
    assert "test entity-level P" in capsys.readouterr().out
    assert json.loads((tmp_path / "ner.json").read_text()) == report       # the record is plain JSON
    assert report["sizes"] == {"train": 16, "valid": 8, "test": 16,
                               "test_entities": report["sizes"]["test_entities"]}
    assert report["steps"] == 2 and 0 <= report["test"]["f1"] <= 1 and 0 <= report["gazetteer_test"]["f1"] <= 1
