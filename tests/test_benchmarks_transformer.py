"""The transformer benchmark runs in quick mode and reports consistent results."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_transformer_benchmark_quick(capsys):
    spec = importlib.util.spec_from_file_location("bench_transformer", ROOT / "benchmarks" / "transformer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick", "--device", "cpu"])
    out = capsys.readouterr().out
    for line in ("matmul peak", "BERT inference MiniLM", "GPT train step", "greedy generation"):
        assert line in out
    assert report["bert"]["max_abs_diff"] < 1e-5 and report["bert"]["ours"] > 0 and report["bert"]["hf"] > 0
    assert report["gpt_train"]["ours"] > 0 and 0 < report["gpt_train"]["mfu_ours"]
    gen = report["generation"]
    assert gen["same_tokens"] is True and gen["cache"] > 0 and gen["no cache"] > 0
