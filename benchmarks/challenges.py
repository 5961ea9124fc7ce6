"""Chapter 6.6-6.7 records: class-imbalance methods on SMS spam, overfitting remedies and learning curves on TREC-6.

Run (one thread, a few minutes):
    .venv/bin/python benchmarks/challenges.py --json benchmarks/results/challenges-cpu.json
    .venv/bin/python benchmarks/challenges.py --quick          # smoke run (one seed, small)
    .venv/bin/python benchmarks/challenges.py --minilm --json benchmarks/results/challenges-cpu.json
        # then: the imbalance methods again on frozen MiniLM sentence embeddings (minutes to encode)

Imbalance: TF-IDF features (fitted on the training split) + a logistic-regression head trained with
each method of ``course_lib.challenges.imbalance.METHODS``, on the natural SMS spam rate (~13%) and on
a 2% spam subsample, for several seeds (each seed is a new split and a new subsample).
Overfitting: ``course_lib.challenges.overfitting`` learning curves (100, 300, 1000, all) and each
remedy at 300 training questions, for several seeds (a new subset and a new initialisation).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course_lib.challenges import imbalance as im  # noqa: E402
from course_lib.challenges import overfitting as of  # noqa: E402

TFIDF = dict(sublinear_tf=True, min_df=2, max_features=3000)
LINEAR = im.LinearConfig(lr=0.1, epochs=100)
OVERFIT = of.TrainConfig()
CURVE_SIZES = (100, 300, 1000, None)       # None = the whole training split
REMEDY_SIZE = 300


def spam_features(spam_fraction, seed):
    from sklearn.feature_extraction.text import TfidfVectorizer
    s = im.spam_splits(spam_fraction, seed=seed)
    vec = TfidfVectorizer(**TFIDF)
    X = {"train": vec.fit_transform(s["train"][0]).toarray()}
    X.update({k: vec.transform(s[k][0]).toarray() for k in ("valid", "test")})
    return {k: (X[k], s[k][1]) for k in s}


def imbalance_run(spam_fraction, seed, config=LINEAR) -> dict:
    """Every method on one split: {method: metrics}, plus the all-ham baseline."""
    d = spam_features(spam_fraction, seed)
    out = {"all_ham": im.binary_metrics(d["test"][1], np.zeros(len(d["test"][1])))}
    for m in im.METHODS:
        r = im.run_method(m, *d["train"], *d["valid"], *d["test"], replace(config, seed=seed))
        out[m] = {k: v for k, v in r.items() if k not in ("prob", "method")}
    out["sizes"] = {k: [int(len(v[1])), int(v[1].sum())] for k, v in d.items()}
    return out


MINILM_LINEAR = im.LinearConfig(lr=0.1, epochs=300)


def minilm_imbalance(seeds) -> dict:
    """The same methods on frozen, mean-pooled MiniLM sentence embeddings (384-d) instead of TF-IDF."""
    from course_lib import data
    from course_lib.serving.backends import SentenceEncoder
    texts = sorted(set(data.load_sms_spam()["text"].astype(str)), key=len)   # sorted: little padding per batch
    start = time.process_time()
    emb = SentenceEncoder().encode(texts, batch_size=64).numpy()
    encode_cpu = time.process_time() - start
    row = {t: i for i, t in enumerate(texts)}
    out = {"encode_cpu_seconds": round(encode_cpu, 1), "messages": len(texts), "linear": asdict(MINILM_LINEAR)}
    for label, frac in (("natural", None), ("spam_2pct", 0.02)):
        runs = []
        for seed in seeds:
            sp = im.spam_splits(frac, seed=seed)
            d = {k: (emb[[row[t] for t in v[0]]], v[1]) for k, v in sp.items()}
            r = {m: im.run_method(m, *d["train"], *d["valid"], *d["test"], replace(MINILM_LINEAR, seed=seed))
                 for m in im.METHODS}
            r["all_ham"] = im.binary_metrics(d["test"][1], np.zeros(len(d["test"][1])))
            runs.append(r)
        out[label] = {m: {k: _summary([r[m][k] for r in runs]) for k in ("accuracy", "macro_f1", "precision",
                                                                        "recall", "f1", "pr_auc", "ece", "threshold")}
                      for m in ("all_ham",) + im.METHODS}
        for m in ("all_ham",) + im.METHODS:
            s = out[label][m]
            print(f"MiniLM {label:9s} {m:12s} macro-F1 {s['macro_f1']['mean']:.3f} ± {s['macro_f1']['std']:.3f}  "
                  f"PR-AUC {s['pr_auc']['mean']:.3f}  ECE {s['ece']['mean']:.3f}", flush=True)
    return out


def trec_ids():
    from course_lib.finetuning.data import load_task
    task = load_task("trec")
    vocab = of.Vocabulary.shipped("glove")
    return (vocab, vocab.encode(list(task.train.text)), task.train.label.to_numpy(),
            vocab.encode(list(task.valid.text)), task.valid.label.to_numpy())


def remedy_runs(vocab, tr, ytr, va, yva, n, seed, config=OVERFIT, names=None) -> dict:
    """Each remedy trained on the same n training questions (subset drawn with ``seed``)."""
    idx = np.random.default_rng(seed).permutation(len(tr))[:n]
    sub, ysub = [tr[i] for i in idx], ytr[idx]
    syn = of.synonym_table(vocab, 5, restrict=[t for r in sub for t in r])
    out = {}
    for name in names or of.REMEDIES:
        r = of.train_classifier(replace(of.remedy_config(name, config), seed=seed), vocab, sub, ysub, va, yva, 6, syn)
        out[name] = {"train_acc": r["train_acc"], "valid_acc": r["valid_acc"], "gap": r["gap"], "epoch": r["epoch"],
                     "history": r["history"]}
    return out


def _summary(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--minilm", action="store_true",
                    help="only the imbalance methods on frozen MiniLM features; merged into an existing --json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.minilm:
        if args.json is None or not args.json.exists():
            raise SystemExit("--minilm adds to an existing --json result; run the full benchmark first")
        report = json.loads(args.json.read_text())
        report["imbalance_minilm"] = minilm_imbalance(range(args.seeds))
        report["imbalance_minilm"]["command"] = ("python benchmarks/challenges.py "
                                                 + " ".join(sys.argv[1:] if argv is None else argv))
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return report
    seeds = range(1 if args.quick else args.seeds)
    start, cpu0 = time.perf_counter(), time.process_time()
    report = {"tfidf": TFIDF, "linear": asdict(LINEAR), "train_config": asdict(OVERFIT), "seeds": list(seeds)}
    # ---- imbalance
    imb = {}
    for label, frac in (("natural", None), ("spam_2pct", 0.02)):
        runs = [imbalance_run(frac, s) for s in seeds]
        imb[label] = {"sizes_seed0": runs[0]["sizes"], "methods": {
            m: {k: _summary([r[m][k] for r in runs]) for k in ("accuracy", "macro_f1", "precision", "recall",
                                                                "f1", "pr_auc", "ece", "threshold")}
            for m in ("all_ham",) + im.METHODS}}
        for m in ("all_ham",) + im.METHODS:
            s = imb[label]["methods"][m]
            print(f"{label:9s} {m:12s} acc {s['accuracy']['mean']:.3f}  macro-F1 {s['macro_f1']['mean']:.3f}"
                  f" ± {s['macro_f1']['std']:.3f}  PR-AUC {s['pr_auc']['mean']:.3f}  ECE {s['ece']['mean']:.3f}",
                  flush=True)
    report["imbalance"] = imb
    # ---- overfitting
    vocab, tr, ytr, va, yva = trec_ids()
    sizes = [n or len(tr) for n in CURVE_SIZES]
    if args.quick:
        sizes = sizes[:2]
    curves = [of.learning_curve(sizes, replace(OVERFIT, seed=s), vocab, tr, ytr, va, yva, 6, seed=s) for s in seeds]
    report["learning_curve"] = {"sizes": sizes, "points": [
        {"n": n, "train_acc": _summary([c[i]["train_acc"] for c in curves]),
         "valid_acc": _summary([c[i]["valid_acc"] for c in curves])} for i, n in enumerate(sizes)],
        "history_seed0": {c["n"]: c["history"] for c in curves[0]}}
    for p in report["learning_curve"]["points"]:
        print(f"curve n={p['n']:5d} train {p['train_acc']['mean']:.3f} valid {p['valid_acc']['mean']:.3f}", flush=True)
    runs = [remedy_runs(vocab, tr, ytr, va, yva, REMEDY_SIZE, s) for s in seeds]
    report["remedies"] = {"n": REMEDY_SIZE, "results": {
        name: {k: _summary([r[name][k] for r in runs]) for k in ("train_acc", "valid_acc", "gap", "epoch")}
        for name in of.REMEDIES}, "history_seed0": {k: v["history"] for k, v in runs[0].items()}}
    for name, s in report["remedies"]["results"].items():
        print(f"remedy {name:18s} valid {s['valid_acc']['mean']:.3f} ± {s['valid_acc']['std']:.3f}  "
              f"gap {s['gap']['mean']:.3f}", flush=True)
    report.update(wall_seconds=round(time.perf_counter() - start, 1), cpu_seconds=round(time.process_time() - cpu0, 1),
                  command="python benchmarks/challenges.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  machine={"platform": platform.platform(), "torch": torch.__version__, "threads": 1})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
