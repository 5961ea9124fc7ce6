"""The Hugging Face route: ``datasets.Dataset`` + ``AutoModelForSequenceClassification`` + ``Trainer``.

The same fine-tuning as :func:`course_lib.finetuning.loop.fit`, written with the library that most
practitioners use. Everything stays offline and local:

- the dataset is built from a pandas DataFrame (:func:`build_dataset`), never downloaded;
- the model comes from a local folder (``course_lib.data.minilm_path()``);
- ``TrainingArguments(report_to="none", use_cpu=True, save_strategy="no")`` with ``output_dir`` in
  a temporary folder, so nothing is uploaded or left behind;
- progress is one plain-text line per epoch (:class:`EpochLineCallback`) instead of Trainer's
  notebook widget, and metrics come from scikit-learn (``evaluate.load`` would need the Hub).

``Trainer``'s defaults match our loop's: AdamW (``adamw_torch``, betas 0.9/0.999, eps 1e-8), weight
decay on everything but biases and LayerNorm weights, linear warm-up then linear decay, gradient
clipping at 1.0 (in transformers 5, ``warmup_steps`` < 1 is the warm-up *ratio*).
``train_sampling_strategy="group_by_length"`` makes batches of similar lengths, as our ``make_batches``.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence

import numpy as np

from .data import check_columns, check_texts, check_tokenizer, encode_labels
from .metrics import classification_metrics, trainer_compute_metrics

__all__ = ["build_dataset", "EpochLineCallback", "train_with_trainer"]


def build_dataset(df, tokenizer, label_names: Sequence[str], *, text_column: str = "text",
                  label_column: str = "label", max_length: int = 64):
    """A tokenised ``datasets.Dataset`` with ``input_ids``, ``attention_mask``, ``token_type_ids``, ``labels``.

    Raises ``KeyError`` when ``df`` lacks the columns, ``ValueError`` for empty texts or labels
    outside ``label_names`` (checked here, before ``datasets`` and torch see them).
    """
    import datasets
    check_columns(df, [text_column, label_column], what="DataFrame")
    texts = check_texts(list(df[text_column]))
    labels = encode_labels(list(df[label_column]), label_names)
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    columns = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels.tolist()}
    if "token_type_ids" in enc:
        columns["token_type_ids"] = enc["token_type_ids"]
    return datasets.Dataset.from_dict(columns)


def _callback_class():
    from transformers import TrainerCallback

    class EpochLineCallback(TrainerCallback):
        """Print one line per evaluation: epoch, mean train loss since the last line, valid metrics."""

        def __init__(self):
            self.losses = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(logs["loss"])

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            train = f"  train loss {np.mean(self.losses):.4f}" if self.losses else ""
            print(f"step {state.global_step:5d}  epoch {state.epoch:4.2f}{train}  valid loss "
                  f"{metrics['eval_loss']:.4f}  valid acc {metrics['eval_accuracy']:.4f}", flush=True)
            self.losses = []

    return EpochLineCallback


def __getattr__(name):            # EpochLineCallback without importing transformers at module import
    if name == "EpochLineCallback":
        return _callback_class()
    raise AttributeError(name)


def train_with_trainer(model_path, train_df, valid_df, label_names: Sequence[str], *, test_df=None,
                       epochs: float = 3, lr: float = 5e-5, batch_size: int = 32, max_length: int = 64,
                       warmup_ratio: float = 0.1, weight_decay: float = 0.01, seed: int = 0,
                       num_frozen_layers: int = 0, max_steps: int | None = None,
                       logging_steps: int = 10, output_dir=None) -> dict:
    """Fine-tune ``AutoModelForSequenceClassification`` from ``model_path`` with ``Trainer``.

    Returns ``{"model", "trainer", "log_history", "valid" (final metrics), "test" (metrics of
    :func:`~course_lib.finetuning.metrics.classification_metrics` + predictions, if ``test_df``),
    "train_seconds"}``. ``num_frozen_layers`` freezes the embeddings and that many lower layers.
    """
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments)
    from transformers.utils import logging as hf_logging
    from transformers.trainer_callback import PrinterCallback
    hf_logging.set_verbosity_error()              # the "newly initialized classifier" notice is expected
    hf_logging.disable_progress_bar()             # no "Loading weights" bar
    line_printer = _callback_class()()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_ds = build_dataset(train_df, tokenizer, label_names, max_length=max_length)
    valid_ds = build_dataset(valid_df, tokenizer, label_names, max_length=max_length)
    torch.manual_seed(seed)                       # the classifier's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=len(label_names))
    check_tokenizer(tokenizer, model.get_input_embeddings().num_embeddings)
    if num_frozen_layers:
        for p in model.bert.embeddings.parameters():
            p.requires_grad_(False)
        for layer in model.bert.encoder.layer[:num_frozen_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    tmp = tempfile.TemporaryDirectory() if output_dir is None else None
    args = TrainingArguments(
        output_dir=output_dir or tmp.name, report_to="none", use_cpu=True, save_strategy="no",
        num_train_epochs=epochs, max_steps=max_steps or -1, learning_rate=lr,
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=2 * batch_size,
        warmup_steps=warmup_ratio, weight_decay=weight_decay, lr_scheduler_type="linear", optim="adamw_torch",
        eval_strategy="epoch", logging_strategy="steps", logging_steps=logging_steps,
        train_sampling_strategy="group_by_length", seed=seed, data_seed=seed, disable_tqdm=True,
        dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=valid_ds,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=trainer_compute_metrics,
                      callbacks=[line_printer])
    trainer.remove_callback(PrinterCallback)       # it would print every log dict
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.remove_callback(line_printer)          # no line for the final evaluate
    out = {"model": model, "trainer": trainer, "log_history": trainer.state.log_history,
           "valid": trainer.evaluate(), "train_seconds": seconds}
    if test_df is not None:
        test_ds = build_dataset(test_df, tokenizer, label_names, max_length=max_length)
        pred = trainer.predict(test_ds)
        # With group_by_length, Trainer also *evaluates* in length-grouped order; its sampler is seeded,
        # so rebuilding it gives that order, and we put the predictions back in the rows' order.
        order = np.asarray(list(trainer._get_eval_sampler(test_ds)) if trainer._get_eval_sampler(test_ds)
                           is not None else range(len(test_ds)))
        y_pred, y_true = np.empty(len(order), dtype=np.int64), np.empty(len(order), dtype=np.int64)
        y_pred[order] = np.asarray(pred.predictions).argmax(-1)
        y_true[order] = pred.label_ids
        if not np.array_equal(y_true, np.asarray(test_ds["labels"])):
            raise RuntimeError("could not restore the order of Trainer's test predictions")
        out["test"] = {**classification_metrics(y_true, y_pred, label_names), "predictions": y_pred}
    if tmp is not None:
        tmp.cleanup()
    return out
