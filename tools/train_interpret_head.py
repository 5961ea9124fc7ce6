"""Train the linear head of the MiniLM sentiment probe explained in notebook 6.9 and ship it.

Frozen MiniLM (mean-pooled over real tokens) + ``Linear(384, 2)`` trained with full-batch L-BFGS
on cached features of Rotten Tomatoes training snippets; accuracy on the validation split.

    python tools/train_interpret_head.py --train 4000 --threads 1 --out checkpoints/interpret
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib import data  # noqa: E402
from course_lib.challenges.attribution import MiniLMProbe, ProbeConfig, _tokenizer  # noqa: E402
from course_lib.transformer.layers import masked_mean  # noqa: E402
from course_lib.finetuning.data import rotten_tomatoes_splits  # noqa: E402
from course_lib.transformer.bert import BertModel  # noqa: E402
from course_lib.transformer.checkpoint import write_checksums, write_readme  # noqa: E402


@torch.no_grad()
def features(model: MiniLMProbe, tok, texts, batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled MiniLM vectors (N, D) (the probe's input to its linear layer)."""
    out = []
    for s in range(0, len(texts), batch_size):
        enc = tok(list(texts[s:s + batch_size]), padding=True, truncation=True, max_length=64, return_tensors="pt")
        h = model.bert(enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state   # (B, T, D)
        out.append(masked_mean(h, enc["attention_mask"]))
    return torch.cat(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=4000, help="training snippets used (0 = all)")
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="checkpoints/interpret")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.process_time()
    task = rotten_tomatoes_splits(seed=0)
    train = task.train if args.train == 0 else task.train.iloc[:args.train]
    model, tok = MiniLMProbe(BertModel.from_pretrained(data.minilm_path())), _tokenizer()
    xtr, xva = features(model, tok, train["text"].tolist()), features(model, tok, task.valid["text"].tolist())
    ytr, yva = torch.tensor(train["label"].to_numpy()), torch.tensor(task.valid["label"].to_numpy())
    head = model.classifier
    opt = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(head(xtr), ytr) + args.weight_decay * head.weight.pow(2).sum()   # CE + lambda ||W||^2
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        acc_tr = (head(xtr).argmax(1) == ytr).float().mean().item()
        acc_va = (head(xva).argmax(1) == yva).float().mean().item()
    cpu = time.process_time() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(out / "head.safetensors"))
    cfg = ProbeConfig()
    (out / "config.json").write_text(json.dumps({"hidden_size": cfg.hidden_size, "num_labels": cfg.num_labels,
                                                 "label_names": list(cfg.label_names), "encoder": "all-MiniLM-L6-v2",
                                                 "pooling": "mean"}, indent=1))
    history = {"command": "python tools/train_interpret_head.py " + " ".join(argv or sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d"), "train_examples": len(train), "valid_examples": len(task.valid),
               "train_accuracy": round(acc_tr, 4), "valid_accuracy": round(acc_va, 4), "cpu_seconds": round(cpu, 1),
               "weight_decay": args.weight_decay, "split": "rotten_tomatoes_splits(seed=0)"}
    (out / "history.json").write_text(json.dumps(history, indent=1))
    sums = write_checksums(out)
    write_readme(out, ["# MiniLM sentiment probe head (notebook 6.9)", "",
                       "Frozen all-MiniLM-L6-v2, mean pooling over real tokens, `Linear(384, 2)` trained by full-batch "
                       "L-BFGS on Rotten Tomatoes training snippets (`rotten_tomatoes_splits(seed=0)`).", "",
                       f"Command: `{history['command']}` ({history['date']}, {cpu:.0f} s CPU).", "",
                       f"Result: train accuracy {acc_tr:.1%}, validation accuracy {acc_va:.1%} "
                       f"({len(task.valid)} snippets)."], sums)
    print(json.dumps(history))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
