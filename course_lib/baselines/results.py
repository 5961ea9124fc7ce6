"""Later chapters' recorded results, read from their files for chapter 1's closing table.

Every number comes from a file a benchmark or training script wrote (``benchmarks/results/*.json``,
``checkpoints/*/history.json``); nothing is typed in. A missing file gives ``None`` for that task,
so the table says the chapter has not recorded it yet.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["REPO", "LATER_RESULTS", "read_later_results"]

REPO = Path(__file__).resolve().parents[2]

# task -> (chapter, what, file, keys to the number)
LATER_RESULTS = {
    "language modelling": ("4.4 tiny GPT", "valid perplexity per word", "checkpoints/tiny_gpt/history.json",
                           ("valid_word_perplexity",)),
    "text classification": ("5.4 fine-tuned MiniLM", "TREC-6 test accuracy",
                            "benchmarks/results/finetune-trec-ours-pretrained.json", ("test", "accuracy")),
    "named-entity recognition": ("5.6 fine-tuned MiniLM", "WNUT-16 test entity F1",
                                 "benchmarks/results/ner-wnut16-cpu.json", ("test", "f1")),
    "sentiment": ("5.4 fine-tuned MiniLM", "Rotten Tomatoes test accuracy",
                  "benchmarks/results/finetune-rotten_tomatoes-ours-pretrained.json", ("test", "accuracy")),
}


def read_later_results(root: str | Path | None = None) -> dict[str, dict]:
    """``{task: {"chapter", "what", "file", "score"}}``; ``score`` is None when the file or key is missing."""
    root = Path(root) if root is not None else REPO
    out = {}
    for task, (chapter, what, rel, keys) in LATER_RESULTS.items():
        score = None
        path = root / rel
        if path.exists():
            value = json.loads(path.read_text(encoding="utf-8"))
            for k in keys:
                value = value.get(k) if isinstance(value, dict) else None
            score = float(value) if isinstance(value, (int, float)) else None
        out[task] = {"chapter": chapter, "what": what, "file": rel, "score": score}
    return out
