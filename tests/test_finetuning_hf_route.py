"""The Hugging Face route (datasets + AutoModelForSequenceClassification + Trainer), offline and small."""
from __future__ import annotations

import pandas as pd
import pytest
import transformers

from course_lib import data
from course_lib.finetuning.hf_route import build_dataset, train_with_trainer


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(data.minilm_path())


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A small random BERT with MiniLM's vocabulary, saved as a local Hugging Face folder."""
    import torch
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert_hf")
    cfg = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def frame(n=32):
    texts = [f"what is the {w} of {v} ?" if k % 2 else f"the {w} was {v} and good"
             for k, (w, v) in enumerate(zip(["capital", "size", "name", "age"] * 8, ["france", "it", "x", "y"] * 8))]
    return pd.DataFrame({"text": texts[:n], "label": ["q" if k % 2 else "s" for k in range(n)]})


def test_build_dataset_tokenises_and_encodes_labels(tokenizer):
    ds = build_dataset(frame(4), tokenizer, ["s", "q"], max_length=8)
    assert ds.column_names == ["input_ids", "attention_mask", "labels", "token_type_ids"]
    assert ds["labels"] == [0, 1, 0, 1] and max(len(x) for x in ds["input_ids"]) <= 8
    assert ds[0]["input_ids"][0] == tokenizer.cls_token_id


def test_build_dataset_bad_input(tokenizer):
    with pytest.raises(KeyError, match=r"no column \['text'\]"):
        build_dataset(frame(4).rename(columns={"text": "sentence"}), tokenizer, ["s", "q"])
    with pytest.raises(ValueError, match=r"outside the label set, e.g. 'q'"):
        build_dataset(frame(4), tokenizer, ["s"])
    bad = frame(4)
    bad.loc[2, "text"] = ""
    with pytest.raises(ValueError, match="empty text"):
        build_dataset(bad, tokenizer, ["s", "q"])


def test_trainer_route_runs_offline_and_scores_the_test_set(tiny_model_dir, capsys, one_torch_thread):
    out = train_with_trainer(tiny_model_dir, frame(32), frame(8), ["s", "q"], test_df=frame(16), epochs=2,
                             lr=1e-3, batch_size=8, max_length=16, logging_steps=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("step     8  epoch 2.00  train loss")
    assert out["trainer"].state.global_step == 8
    assert set(out["test"]) >= {"accuracy", "macro_f1", "confusion_matrix", "predictions"}
    assert sum(map(sum, out["test"]["confusion_matrix"])) == 16
    pred = out["test"]["predictions"]                       # in the rows' order, whatever Trainer's order
    assert out["test"]["accuracy"] == (pred == frame(16).label.map({"s": 0, "q": 1}).to_numpy()).mean()
    assert "eval_accuracy" in out["valid"]


def test_trainer_route_rejects_a_mismatched_tokenizer(tmp_path, tokenizer):
    cfg = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64)
    transformers.BertModel(cfg).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="tokenizer has 30522 tokens but the model's embedding table has 99 rows"):
        train_with_trainer(tmp_path, frame(8), frame(4), ["s", "q"], epochs=1)
