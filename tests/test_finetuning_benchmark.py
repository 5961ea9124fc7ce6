"""benchmarks/finetune.py runs in quick mode (both routes) and writes a consistent report."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("bench_finetune", ROOT / "benchmarks" / "finetune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("route", ["ours", "hf"])
def test_finetune_benchmark_quick(route, tmp_path, capsys, one_torch_thread):
    out = tmp_path / "r.json"
    report = load_script().main(["--quick", "--route", route, "--json", str(out)])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"trec route={route} init=pretrained: test accuracy")
    assert json.loads(out.read_text())["test"] == report["test"]
    assert report["sizes"]["train"] == 64 and sum(map(sum, report["test"]["confusion_matrix"])) == 64
    assert 0 <= report["test"]["accuracy"] <= 1 and report["tfidf_logreg_test"]["accuracy"] > 0


def test_finetune_benchmark_rejects_hf_with_random_init():
    with pytest.raises(SystemExit, match="--route hf supports --init pretrained only"):
        load_script().main(["--quick", "--route", "hf", "--init", "random"])
