"""Model choice: prompts, label-word scoring with our Llama (padding-invariant), latency, the Pareto front."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.challenges import model_choice as mc

RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "model_choice-trec-cpu.json"


def test_zero_and_few_shot_prompts():
    zero = mc.build_prompt("Who wrote Hamlet ?")
    assert zero == mc.INSTRUCTION + "\n\nQuestion: Who wrote Hamlet ?\nAnswer:"
    few = mc.build_prompt("Who wrote Hamlet ?", [("What is CPR ?", 2), ("How tall is K2 ?", 4)])
    assert few.count("Question:") == 3 and "Answer: abbreviation\n" in few and "Answer: number\n" in few
    assert few.endswith("Question: Who wrote Hamlet ?\nAnswer:")
    with pytest.raises(ValueError, match="non-empty"):
        mc.build_prompt("  ")
    with pytest.raises(ValueError, match="outside 0..5"):
        mc.build_prompt("Why ?", [("x", 6)])


def test_few_shot_examples_take_each_class():
    texts = [f"q{i}" for i in range(60)]
    labels = np.arange(60) % 6
    ex = mc.few_shot_examples(texts, labels, per_class=2, seed=1)
    assert sorted(np.bincount([y for _, y in ex]).tolist()) == [2] * 6
    assert all(labels[int(t[1:])] == y for t, y in ex)
    assert ex == mc.few_shot_examples(texts, labels, per_class=2, seed=1)


@pytest.fixture(scope="module")
def scorer():
    from course_lib.serving.backends import Completer
    c = Completer.tiny_random(seed=0)
    return mc.LabelScorer(c.model, c.tokenizer, ["person", "number", "location"])


def test_label_scores_do_not_depend_on_left_padding(scorer):
    prompts = ["Who wrote Hamlet ?\nAnswer:", "How far is it from Denver to Aspen in miles ?\nAnswer:", "Where ?"]
    batch = scorer.label_logprobs(prompts)
    assert batch.shape == (3, 3) and (batch <= 0).all()
    for i, p in enumerate(prompts):
        torch.testing.assert_close(scorer.label_logprobs([p])[0], batch[i], atol=1e-5, rtol=1e-5)
    # and they are the model's next-token log-probabilities of the label words
    ids = torch.tensor([scorer.tokenizer(prompts[0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(scorer.model(ids)[0, -1], -1)
    torch.testing.assert_close(batch[0], logp[scorer.label_ids], atol=1e-5, rtol=1e-5)
    assert scorer.predict(prompts, batch_size=2).tolist() == batch.argmax(-1).tolist()


def test_multi_token_label_words_are_refused(scorer):
    with pytest.raises(ValueError, match="several tokens"):
        mc.LabelScorer(scorer.model, scorer.tokenizer, ["person", "abbreviationzzq"])


def test_latency_per_example_and_memory():
    calls = []
    per = mc.latency_per_example(lambda b: calls.append(len(b)), list(range(40)), 32, repeats=3, warmup=1)
    assert calls == [32] * 4 and per >= 0
    assert mc.peak_rss_mib() > 10
    with pytest.raises(ValueError, match="at least batch_size"):
        mc.latency_per_example(len, [1, 2], 32)


def test_pareto_front():
    rows = [{"name": "a", "accuracy": 0.9, "latency_b1_ms": 10}, {"name": "b", "accuracy": 0.8, "latency_b1_ms": 1},
            {"name": "c", "accuracy": 0.7, "latency_b1_ms": 5}, {"name": "d", "accuracy": 0.9, "latency_b1_ms": 12}]
    assert mc.pareto_front(rows) == ["a", "b"]
    with pytest.raises(ValueError, match="each row needs"):
        mc.pareto_front([{"name": "x"}])


@pytest.mark.skipif(not RESULT.exists(), reason="run benchmarks/model_choice.py --json ... first")
def test_recorded_table_is_complete_and_consistent():
    rep = json.loads(RESULT.read_text())
    names = [r["name"] for r in rep["rows"]]
    assert names == ["glove_lr", "tfidf_lr", "tiny_bert", "minilm", "smollm2_zero", "smollm2_few"]
    rows = {r["name"]: r for r in rep["rows"]}
    assert rows["minilm"]["accuracy"] > rows["tfidf_lr"]["accuracy"] > rows["glove_lr"]["accuracy"]
    assert rows["smollm2_few"]["parameters"] > 100e6 > rows["minilm"]["parameters"] > 20e6
    for r in rep["rows"]:
        assert r["latency_b1_ms"] > 0 and r["peak_rss_mib"] > r["rss_after_imports_mib"] > 0
    assert rep["pareto_front"] == mc.pareto_front(rep["rows"])


def test_shared_prefix_cache_gives_the_same_scores(scorer):
    examples = [("What is CPR ?", 2), ("How tall is K2 ?", 4)]
    prefix = mc.prompt_prefix(examples)
    prompts = [mc.build_prompt(q, examples) for q in ("Where is Rome ?", "How many legs does a spider have ?", "Who ?")]
    assert all(p.startswith(prefix) for p in prompts)
    shared = scorer.label_logprobs(prompts, prefix=prefix)
    full = scorer.label_logprobs(prompts)
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scorer.label_logprobs(prompts[1:2], prefix=prefix)[0], full[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="does not start with the prefix"):
        scorer.label_logprobs(["Something else entirely"], prefix=prefix)


def test_benchmark_candidate_smoke():
    import subprocess
    import sys
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "model_choice.py"
    proc = subprocess.run([sys.executable, str(script), "--candidate", "tfidf_lr", "--limit", "64", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])
    assert row["name"] == "tfidf_lr" and row["measured"]["n_test"] == 64 and 0.7 < row["accuracy"] <= 1
    assert row["latency_b1_ms"] > row["latency_b32_ms"] > 0 and row["peak_rss_mib"] > 50
