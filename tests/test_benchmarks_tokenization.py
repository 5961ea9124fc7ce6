"""The tokenisation benchmark runs (quick mode) and both sides agree on every line."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tokenization_benchmark_quick(capsys):
    spec = importlib.util.spec_from_file_location("bench_tokenization", ROOT / "benchmarks" / "tokenization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick"])
    out = capsys.readouterr().out
    assert "BPE train (whitespace)" in out and "WordPiece encode" in out and "unspaced" in out
    expected = {f"{task}/{name}" for name in ("whitespace", "byte_level")
                for task in ("bpe_train", "bpe_encode_warm", "bpe_encode_cold", "bpe_encode_unspaced")} | {"wordpiece_encode"}
    assert set(report["results"]) == expected
    for result in report["results"].values():
        assert result["agree"] is True
        assert result["ours_seconds"] > 0 and result["reference_seconds"] > 0 and result["ratio"] > 0
