"""Interpretability measurements of notebook 6.9 on the MiniLM sentiment probe (checkpoints/interpret).

For short Rotten Tomatoes test snippets (5-10 distinct words, so that exact Shapley values can be
enumerated), in one process:

* parity: our integrated gradients vs Captum's LayerIntegratedGradients (max abs diff);
* completeness error of IG against the number of steps, per quadrature rule;
* LIME: ours vs ``lime`` with the same seed (identical masks) and with independent seeds
  (Spearman rho of the word weights); lime vs lime across seeds;
* KernelSHAP: ours (enumeration) vs exact Shapley vs ``shap.KernelExplainer``; sampled KernelSHAP;
* the deletion test: drop of p(predicted class) after deleting the top-k words, per method and random;
* time ratios (ours vs the library, interleaved, median) and the cold import times of shap, lime, captum.

    .venv/bin/python benchmarks/interpretability.py --json benchmarks/results/interpretability-cpu.json
    .venv/bin/python benchmarks/interpretability.py --quick
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course_lib.challenges import attribution as A  # noqa: E402
from course_lib.challenges import faithfulness as FA  # noqa: E402
from course_lib.challenges import perturbation as P  # noqa: E402
from course_lib.finetuning.data import rotten_tomatoes_splits  # noqa: E402

STEPS = (4, 8, 16, 32, 64, 128)
RULES = ("gausslegendre", "riemann_middle", "riemann_trapezoid", "riemann_left")
KS = (1, 2, 3)


def import_seconds(module: str) -> float:
    """Cold import time in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def short_examples(n: int, min_words: int = 5, max_words: int = 10) -> list[str]:
    test = rotten_tomatoes_splits(seed=0).test["text"].tolist()
    return [t for t in test if min_words <= len(P.TextFeatures(t)) <= max_words][:n]


def lime_package(text, f, samples, seed, M):
    from lime.lime_text import LimeTextExplainer
    target = int(np.argmax(f([text])[0]))
    exp = LimeTextExplainer(kernel_width=25, feature_selection="none", random_state=seed).explain_instance(
        text, f, labels=(target,), num_features=M, num_samples=samples)
    w = np.zeros(M)
    for j, v in exp.as_map()[target]:
        w[j] = v
    return w


def shap_package(value_fn, M, nsamples):
    import shap
    explainer = shap.KernelExplainer(value_fn, np.zeros((1, M)))
    return np.asarray(explainer.shap_values(np.ones((1, M)), nsamples=nsamples, l1_reg=False, silent=True)).ravel()


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=24)
    ap.add_argument("--lime-samples", type=int, default=500)
    ap.add_argument("--shap-samples", type=int, default=200, help="for the sampled KernelSHAP comparison")
    ap.add_argument("--random-orders", type=int, default=20)
    ap.add_argument("--completeness-examples", type=int, default=3, help="examples for the IG error-vs-steps curve")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="2 examples, small samples (seconds)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.examples, args.lime_samples, args.shap_samples, args.random_orders = 2, 100, 60, 3
        args.completeness_examples = 1
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    model, tok = A.load_probe()
    f = FA.predict_proba(model, tok)
    from captum.attr import LayerIntegratedGradients
    lig = LayerIntegratedGradients(model.prob, model.word_embeddings)
    texts = short_examples(args.examples)
    methods = ("ig", "grad_x_input", "saliency", "lime", "kernel_shap")
    rows = []
    completeness = {r: {n: [] for n in STEPS} for r in RULES}
    for i, text in enumerate(texts):
        ex = FA.explain_words(model, tok, text, lime_samples=args.lime_samples, methods=methods)
        feats, vf, M, y = ex["features"], ex["value_fn"], len(ex["features"]), ex["target"]
        enc = A.encode(tok, text)
        x = model.word_embeddings(enc["input_ids"]).detach()
        xb = model.word_embeddings(enc["baseline_ids"]).detach()
        ours = A.integrated_gradients(model.prob_embeds, x, xb, target=y, n_steps=50)
        ref = lig.attribute(enc["input_ids"], enc["baseline_ids"], target=y, n_steps=50)
        parity = float((ours - ref).abs().max())
        if i < args.completeness_examples:
            for r in RULES:
                for n in STEPS:
                    _, d = A.integrated_gradients(model.prob_embeds, x, xb, target=y, n_steps=n, method=r,
                                                  return_convergence_delta=True)
                    completeness[r][n].append(abs(float(d)))
        exact, _ = P.exact_shapley(vf, M)
        lime_same = lime_package(text, f, args.lime_samples, 0, M)           # our LIME used seed 0
        lime_other = lime_package(text, f, args.lime_samples, 1, M)
        shap_exact = shap_package(vf, M, 2 ** M)
        ks_sampled = P.kernel_shap(vf, M, nsamples=args.shap_samples, random_state=1)["phi"]
        shap_sampled = shap_package(vf, M, args.shap_samples)
        drops = {m: P.deletion_drops(vf, M, ex["scores"][m], KS).tolist() for m in methods}
        drops["exact_shapley"] = P.deletion_drops(vf, M, exact, KS).tolist()
        drops["random"] = P.deletion_drops(vf, M, None, KS, random_orders=args.random_orders, random_state=i).tolist()
        rows.append({
            "text": text, "words": M, "target": y, "p": round(ex["p"], 4), "ig_captum_max_abs_diff": parity,
            "lime_ours_vs_lime_same_seed_max_abs_diff": float(np.abs(ex["scores"]["lime"] - lime_same).max()),
            "rho_lime_ours_vs_lime_other_seed": FA.spearman(ex["scores"]["lime"], lime_other),
            "rho_lime_vs_lime_seeds_0_1": FA.spearman(lime_same, lime_other),
            "kernel_shap_vs_exact_max_abs_diff": float(np.abs(ex["scores"]["kernel_shap"] - exact).max()),
            "shap_package_vs_exact_max_abs_diff": float(np.abs(shap_exact - exact).max()),
            "rho_sampled_kernel_shap_vs_exact": FA.spearman(ks_sampled, exact),
            "rho_shap_package_sampled_vs_exact": FA.spearman(shap_sampled, exact),
            "rho_ig_vs_shapley": FA.spearman(ex["scores"]["ig"], exact),
            "rho_lime_vs_shapley": FA.spearman(ex["scores"]["lime"], exact),
            "rho_grad_x_input_vs_shapley": FA.spearman(ex["scores"]["grad_x_input"], exact),
            "rho_saliency_vs_shapley": FA.spearman(ex["scores"]["saliency"], exact),
            "deletion_drops": drops})
        r = rows[-1]
        print(f"[{i + 1}/{len(texts)}] M={M} ig-captum {parity:.1e}  rho(lime ours, lime seed 1) "
              f"{r['rho_lime_ours_vs_lime_other_seed']:.2f}  rho(IG, Shapley) {r['rho_ig_vs_shapley']:.2f}", flush=True)
    # timings: one example, interleaved, median of repeats (ratios only; the machine is shared)
    text, rep = texts[0], (2 if args.quick else 5)
    enc = A.encode(tok, text)
    x, xb = model.word_embeddings(enc["input_ids"]).detach(), model.word_embeddings(enc["baseline_ids"]).detach()
    feats = P.TextFeatures(text)
    vf = P.text_value_fn(feats, f, 1)
    timing = {
        "ig_ours_s": median_time(lambda: A.integrated_gradients(model.prob_embeds, x, xb, target=1, n_steps=50), rep),
        "ig_captum_s": median_time(lambda: lig.attribute(enc["input_ids"], enc["baseline_ids"], target=1,
                                                         n_steps=50), rep),
        "lime_ours_s": median_time(lambda: P.explain_lime(feats, vf, P.LimeConfig(num_samples=args.lime_samples)),
                                   rep),
        "lime_package_s": median_time(lambda: lime_package(text, f, args.lime_samples, 0, len(feats)), rep),
        "kernel_shap_ours_s": median_time(lambda: P.kernel_shap(vf, len(feats)), rep),
        "kernel_shap_package_s": median_time(lambda: shap_package(vf, len(feats), 2 ** len(feats)), rep)}
    imports = {m: round(statistics.median([import_seconds(m) for _ in range(2 if args.quick else 3)]), 2)
               for m in ("shap", "lime.lime_text", "captum.attr")}
    mean = lambda key: float(np.mean([r[key] for r in rows]))                             # noqa: E731
    summary = {key: mean(key) for key in rows[0] if key.startswith(("rho_", "ig_", "lime_ours", "kernel_", "shap_"))}
    summary["max_ig_captum_max_abs_diff"] = max(r["ig_captum_max_abs_diff"] for r in rows)
    summary["max_lime_same_seed_diff"] = max(r["lime_ours_vs_lime_same_seed_max_abs_diff"] for r in rows)
    summary["max_kernel_shap_vs_exact"] = max(r["kernel_shap_vs_exact_max_abs_diff"] for r in rows)
    summary["max_shap_package_vs_exact"] = max(r["shap_package_vs_exact_max_abs_diff"] for r in rows)
    deletion = {m: np.mean([r["deletion_drops"][m] for r in rows], axis=0).round(4).tolist()
                for m in rows[0]["deletion_drops"]}
    comp = {r: {str(n): float(np.mean(v)) for n, v in d.items() if v} for r, d in completeness.items()}
    result = {"benchmark": "interpretability", "quick": args.quick, "examples": len(rows),
              "lime_samples": args.lime_samples, "shap_samples": args.shap_samples, "kernel_width": 25,
              "ks": list(KS), "completeness_examples": args.completeness_examples, "summary": summary,
              "deletion_mean_drop": deletion, "completeness_mean_abs_error": comp,
              "timing_seconds": timing, "import_seconds": imports, "rows": rows,
              "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
                          "processor": platform.machine()},
              "wall_seconds": round(time.perf_counter() - t_start, 1), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps({k: result[k] for k in ("summary", "deletion_mean_drop", "timing_seconds", "import_seconds")},
                     indent=1))
    print(f"IG ours/captum time ratio {timing['ig_ours_s'] / timing['ig_captum_s']:.2f}; LIME ours/lime "
          f"{timing['lime_ours_s'] / timing['lime_package_s']:.2f}; KernelSHAP ours/shap "
          f"{timing['kernel_shap_ours_s'] / timing['kernel_shap_package_s']:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
