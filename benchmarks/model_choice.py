"""The model-choice table of chapter 6.8: TREC-6 accuracy, CPU latency at batch 1 and 32, peak memory.

Run (one thread; each candidate runs in its own fresh process, so its peak memory is its own):
    .venv/bin/python benchmarks/model_choice.py --llm-limit 200 --json benchmarks/results/model_choice-trec-cpu.json
    .venv/bin/python benchmarks/model_choice.py --quick                      # smoke run, cheap candidates
    .venv/bin/python benchmarks/model_choice.py --candidate tfidf_lr          # one candidate, JSON on stdout
    .venv/bin/python benchmarks/model_choice.py --latency-only --json benchmarks/results/model_choice-trec-cpu.json
        # then: every candidate's latency again, all in one process, interleaved round by round (fairer on a
        # machine whose load changes), written into the same JSON

Candidates: ``glove_lr`` (averaged official GloVe 6B 50-d + logistic regression), ``tfidf_lr``,
``tiny_bert`` and ``minilm`` (our ``BertForSequenceClassification``; their accuracy is the recorded
chapter 5 fine-tuning run, ``benchmarks/results/finetune-trec-ours-*.json``, their latency and
memory are measured here on the same architecture), ``smollm2_zero`` and ``smollm2_few`` (SmolLM2-135M-Instruct
through our Llama code, scoring the label words, zero-shot and with two examples per class; the
instruction and examples are computed once and kept in a KV cache, as a server's prompt cache would).
All on ``course_lib.finetuning.data.load_task("trec")`` (the chapter 5 split; test = the standard 500).
"""
from __future__ import annotations

import argparse
import functools
import statistics
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course_lib.challenges import model_choice as mc  # noqa: E402

CANDIDATES = ("glove_lr", "tfidf_lr", "tiny_bert", "minilm", "smollm2_zero", "smollm2_few")
QUICK = ("glove_lr", "tfidf_lr", "tiny_bert")
RESULTS = ROOT / "benchmarks" / "results"


def _task():
    from course_lib.finetuning.data import load_task
    return load_task("trec")


def _glove_lr(task):
    from sklearn.linear_model import LogisticRegression

    from course_lib import data
    from course_lib.challenges.overfitting import tokenize
    vectors, words = data.load_glove_6b_50d(mmap=False)
    index = {w: i for i, w in enumerate(words)}

    def features(texts):
        out = np.zeros((len(texts), vectors.shape[1]), np.float32)           # (N, 50) mean of known words
        for r, t in enumerate(texts):
            ids = [index[w] for w in tokenize(t) if w in index]
            if ids:
                out[r] = vectors[ids].mean(0)
        return out
    clf = LogisticRegression(C=10.0, max_iter=3000).fit(features(list(task.train.text)), task.train.label)
    predict = lambda texts: clf.predict(features(texts))                       # noqa: E731
    return predict, vectors.size + clf.coef_.size + clf.intercept_.size, None


def _tfidf_lr(task):
    from course_lib.finetuning.baselines import tfidf_logreg
    res = tfidf_logreg(task.train.text, task.train.label, task.test.text, task.test.label)
    clf = res["pipeline"][-1]
    return res["pipeline"].predict, clf.coef_.size + clf.intercept_.size, None


def _bert(task, which: str):
    from transformers import AutoTokenizer

    from course_lib import data
    from course_lib.finetuning.classification import BertForSequenceClassification, count_parameters
    folder = ROOT / "checkpoints" / "tiny_bert" if which == "tiny_bert" else data.minilm_path()
    tok = AutoTokenizer.from_pretrained(data.minilm_path())
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(folder, 6).eval()

    @torch.inference_mode()
    def predict(texts):
        enc = tok(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
        return model(enc["input_ids"], attention_mask=enc["attention_mask"]).logits.argmax(-1).numpy()
    recorded = json.loads((RESULTS / f"finetune-trec-ours-{'tiny_bert' if which == 'tiny_bert' else 'pretrained'}.json")
                          .read_text())
    return predict, count_parameters(model), {"accuracy": recorded["test"]["accuracy"],
                                              "macro_f1": recorded["test"]["macro_f1"],
                                              "source": recorded["command"]}


@functools.lru_cache(maxsize=1)
def _load_smollm2():
    from course_lib.transformer.llama import load_smollm2
    return load_smollm2()


def _smollm2(task, shots: int):
    model, tok = _load_smollm2()
    scorer = mc.LabelScorer(model, tok)
    examples = mc.few_shot_examples(list(task.train.text), task.train.label.to_numpy(), shots) if shots else []
    prefix = mc.prompt_prefix(examples)          # instruction + examples: computed once, kept in a KV cache
    predict = lambda texts: scorer.predict([mc.build_prompt(t, examples) for t in texts], prefix=prefix)  # noqa: E731
    extra = {"prompt_example": mc.build_prompt(task.test.text[0], examples), "shots_per_class": shots}
    return predict, sum(p.numel() for p in model.parameters()), extra


def run_candidate(name: str, limit: int | None, repeats: int, llm_limit: int | None = None) -> dict:
    torch.set_num_threads(1)
    task = _task()
    rss_imports = mc.peak_rss_mib()
    start = time.perf_counter()
    build = BUILDERS[name]
    predict, params, extra = build(task)
    setup = time.perf_counter() - start
    llm = name.startswith("smollm2")
    if llm and llm_limit is not None:
        limit = llm_limit if limit is None else min(limit, llm_limit)
    test = task.test if limit is None else task.test.iloc[:limit]
    texts, labels = list(test.text), test.label.to_numpy()
    start = time.perf_counter()
    pred = np.concatenate([np.asarray(predict(texts[s:s + 32])) for s in range(0, len(texts), 32)])
    predict_seconds = time.perf_counter() - start
    measured = {"accuracy": float((pred == labels).mean()), "n_test": len(labels)}
    out = {"name": name, "parameters": int(params), "setup_seconds": round(setup, 2),
           "predict_seconds": round(predict_seconds, 2), "measured": measured,
           "latency_b1_ms": 1000 * mc.latency_per_example(predict, texts, 1, repeats=5 if llm else 5 * repeats),
           "latency_b32_ms": 1000 * mc.latency_per_example(predict, texts, 32, repeats=1 if llm else repeats),
           "rss_after_imports_mib": round(rss_imports, 1), "peak_rss_mib": round(mc.peak_rss_mib(), 1)}
    if isinstance(extra, dict) and "source" in extra:
        out["accuracy"], out["accuracy_source"] = extra["accuracy"], "recorded: " + extra["source"]
        out["measured"]["note"] = "random classification head: latency/memory only"
    else:
        out["accuracy"], out["accuracy_source"] = measured["accuracy"], "measured here"
        if extra:
            out.update(extra)
        out["predictions"] = pred.tolist()
    return out


BUILDERS = {"glove_lr": _glove_lr, "tfidf_lr": _tfidf_lr, "tiny_bert": lambda t: _bert(t, "tiny_bert"),
            "minilm": lambda t: _bert(t, "minilm"), "smollm2_zero": lambda t: _smollm2(t, 0),
            "smollm2_few": lambda t: _smollm2(t, 2)}


def interleaved_latency(names, rounds: int = 3) -> dict:
    """All candidates in this one process, timed in turn, round after round (a different batch of
    test questions each round): the machine's load changes affect every candidate alike. Returns
    {name: {"latency_b1_ms", "latency_b32_ms"}}, medians over rounds (batch 1: median of 3 per round)."""
    torch.set_num_threads(1)
    task = _task()
    texts = list(task.test.text)
    predict = {name: BUILDERS[name](task)[0] for name in names}
    for name in names:                                             # warm-up: first calls pay one-off costs
        predict[name](texts[:2])
    times = {name: {"b1": [], "b32": []} for name in names}
    for r in range(rounds):
        batch = texts[32 * r:32 * (r + 1)]
        for name in names:
            times[name]["b1"].append(mc.latency_per_example(predict[name], batch, 1, repeats=3, warmup=0))
            times[name]["b32"].append(mc.latency_per_example(predict[name], batch, 32, repeats=1, warmup=0))
        print(f"round {r + 1}/{rounds}: " + "  ".join(f"{n} {1000 * times[n]['b1'][-1]:.1f}/{1000 * times[n]['b32'][-1]:.2f}"
                                                     for n in names), flush=True)
    return {name: {"latency_b1_ms": 1000 * statistics.median(t["b1"]),
                   "latency_b32_ms": 1000 * statistics.median(t["b32"])} for name, t in times.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", choices=CANDIDATES, default=None, help="run one candidate, print its JSON")
    ap.add_argument("--quick", action="store_true", help="cheap candidates, 64 test questions")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N test questions")
    ap.add_argument("--llm-limit", type=int, default=None,
                    help="score only the first N test questions with SmolLM2 (minutes per 100 few-shot on a CPU)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the interleaved latency measurement")
    ap.add_argument("--latency-only", action="store_true",
                    help="re-measure the latencies of the rows in --json, interleaved in one process, and update it")
    args = ap.parse_args(argv)
    if args.latency_only:
        if args.json is None or not args.json.exists():
            raise SystemExit("--latency-only updates an existing --json result; run the full benchmark first")
        report = json.loads(args.json.read_text())
        lat = interleaved_latency([r["name"] for r in report["rows"]], args.rounds)
        for r in report["rows"]:
            r["latency_separate_process"] = {k: r[k] for k in ("latency_b1_ms", "latency_b32_ms")}
            r.update(lat[r["name"]])
        report["pareto_front"] = mc.pareto_front(report["rows"])
        report["latency_command"] = "python benchmarks/model_choice.py " + " ".join(sys.argv[1:] if argv is None else argv)
        report["note"] = ("latency_b1_ms / latency_b32_ms: all candidates in one process, interleaved round by round "
                          f"({args.rounds} rounds, medians), one thread, on a shared 2-core CPU; "
                          "latency_separate_process: the first measurement, each candidate in its own process")
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return report
    if args.candidate:
        res = run_candidate(args.candidate, args.limit, args.repeats, args.llm_limit)
        print("RESULT " + json.dumps(res))
        return res
    names = QUICK if args.quick else CANDIDATES
    limit = 64 if args.quick else args.limit
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--candidate", name, "--repeats", str(2 if args.quick else args.repeats)]
        if limit:
            cmd += ["--limit", str(limit)]
        if args.llm_limit:
            cmd += ["--llm-limit", str(args.llm_limit)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            raise SystemExit(f"candidate {name} failed:\n{proc.stderr[-3000:]}")
        row = json.loads(line[-1][7:])
        rows.append(row)
        if args.json:                                          # keep what is done if a later candidate fails
            args.json.with_suffix(".partial.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        print(f"{name:13s} params {row['parameters']:>11,}  acc {row['accuracy']:.3f}  "
              f"b1 {row['latency_b1_ms']:8.2f} ms  b32 {row['latency_b32_ms']:8.2f} ms/ex  "
              f"peak RSS {row['peak_rss_mib']:7.0f} MiB", flush=True)
    report = {"task": "trec", "rows": rows, "threads": 1, "quick": args.quick,
              "pareto_front": mc.pareto_front(rows),
              "command": "python benchmarks/model_choice.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": {"platform": platform.platform(), "processor": platform.machine(),
                          "torch": torch.__version__},
              "note": "wall-clock latencies on a shared 2-core CPU; compare rows, not absolute values"}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        args.json.with_suffix(".partial.json").unlink(missing_ok=True)
    return report


if __name__ == "__main__":
    main()
