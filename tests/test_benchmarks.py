"""The benchmark scripts run (quick mode) and report consistent results."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_attention_benchmark_quick(capsys):
    report = _load("attention").main(["--quick", "--device", "cpu", "--lengths", "128", "256"])
    out = capsys.readouterr().out
    assert "ours (tiled)" in out and "F.sdpa" in out
    for T in (128, 256):
        for result in report["timing"][T].values():
            assert result["seconds"] > 0 and result["max_abs_diff"] < 1e-4
        mem = report["memory"][T]
        assert mem["naive_bytes"] > mem["tiled_bytes"] > 0
