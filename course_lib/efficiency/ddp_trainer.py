"""The same data-parallel training through Hugging Face ``Trainer``, started by torchrun.

::

    torchrun --nproc_per_node 2 -m course_lib.efficiency.ddp_trainer --max-steps 4

``Trainer`` reads torchrun's environment, joins the process group with
``TrainingArguments(ddp_backend="gloo")`` (``"nccl"`` on GPUs), wraps the model in
``DistributedDataParallel`` and gives each rank its own shard of every batch through a
distributed sampler; ``per_device_train_batch_size`` is per rank, so the global batch is
``world_size`` times larger. The model is MiniLM with a new classification head (chapter 5's
classifier, the Hugging Face route) on a slice of TREC; rank 0 prints one line per logged step.

With ``average_tokens_across_devices=True`` (the default in transformers 5) and a model whose
``forward`` accepts ``**kwargs``, ``Trainer`` multiplies each rank's loss by the world size,
expecting the model to have divided its loss *sum* by the global token count. MiniLM's
``BertForSequenceClassification`` returns a plain *mean*, so the logged loss (and the gradient)
come out ``world_size`` times too large: the accumulation normalisation bug of
:mod:`course_lib.efficiency.accumulation`, across processes. ``--average-tokens-across-devices 0``
logs the true loss.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-steps", type=int, default=4)
    p.add_argument("--per-device-batch-size", type=int, default=8)
    p.add_argument("--n-examples", type=int, default=64)
    p.add_argument("--max-length", type=int, default=24)
    p.add_argument("--ddp-backend", choices=("gloo", "nccl"), default="gloo")
    p.add_argument("--average-tokens-across-devices", type=int, choices=(0, 1), default=1,
                   help="TrainingArguments' flag (library default 1; see the module docstring)")
    p.add_argument("--out", default=None, help="rank 0 writes the log history here as JSON")
    args = p.parse_args(argv)

    import course_lib  # noqa: F401  (quiets torchao's GPU-kernel warnings before transformers.Trainer)
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)
    from transformers.utils import logging as hf_logging

    from ..data import load_trec, minilm_path
    from ..finetuning.hf_route import build_dataset
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", 0))

    df = load_trec("train").iloc[:args.n_examples].rename(columns={"label_coarse": "label"})
    names = [str(i) for i in range(6)]
    df["label"] = df["label"].map(lambda i: names[i])
    tok = AutoTokenizer.from_pretrained(minilm_path())
    ds = build_dataset(df[["text", "label"]], tok, names, max_length=args.max_length)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=len(names))
    with tempfile.TemporaryDirectory() as out_dir:
        targs = TrainingArguments(
            output_dir=out_dir, report_to="none", save_strategy="no", use_cpu=args.ddp_backend == "gloo",
            ddp_backend=args.ddp_backend, max_steps=args.max_steps, learning_rate=5e-5,
            per_device_train_batch_size=args.per_device_batch_size, logging_steps=1, disable_tqdm=True,
            dataloader_num_workers=0, seed=0, average_tokens_across_devices=bool(args.average_tokens_across_devices))
        trainer = Trainer(model=model, args=targs, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
        trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    if rank == 0:
        for h in history:
            print(f"step {h['step']}  loss {h['loss']:.3f}", flush=True)
        print(f"Trainer: world_size {targs.world_size}, backend {targs.ddp_backend}, "
              f"global batch {targs.per_device_train_batch_size * targs.world_size} "
              f"({targs.per_device_train_batch_size} per rank), parallel mode {targs.parallel_mode.name}", flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"world_size": targs.world_size, "backend": targs.ddp_backend, "history": history,
                           "model_wrapped": type(trainer.model_wrapped).__name__}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
