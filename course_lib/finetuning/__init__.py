"""Chapter 5: fine-tuning pre-trained encoders (sequence classification; NER and LoRA build on it).

Modules
-------
data
    checks (columns, empty texts, labels outside the label set, tokenizer/model vocabulary), tokenising,
    length-bucketed padded batches, the TREC-6 and Rotten Tomatoes splits (``load_task``).
classification
    ``BertForSequenceClassification``: our ``BertModel`` + dropout + ``classifier`` (Hugging Face names).
loop
    ``fit`` / ``evaluate``: the plain PyTorch loop (AdamW, warm-up + linear decay, clipping, per-epoch lines).
hf_route
    the same with ``datasets`` + ``AutoModelForSequenceClassification`` + ``Trainer`` (offline, CPU).
metrics
    accuracy, macro-F1, confusion matrix (scikit-learn) and its plot.
baselines
    TF-IDF + logistic regression; published results with their citations.
ner
    ``BertForTokenClassification``, BIO labels aligned to WordPieces (first sub-token), entity-level scores
    (seqeval), a gazetteer baseline, the WNUT-16 split.
lora
    LoRA from scratch (``LoraConfig``, ``LoraLinear``, ``apply_lora``, merge / unmerge), equal to ``peft``.

Example
-------
>>> from course_lib import data
>>> from course_lib.finetuning import BertForSequenceClassification, fit, load_task   # doctest: +SKIP
>>> model = BertForSequenceClassification.from_pretrained(data.minilm_path(), num_labels=6)  # doctest: +SKIP
"""
from . import baselines, classification, data, lora, loop, metrics, ner
from .classification import BertForSequenceClassification, SequenceClassifierOutput, freeze_lower_layers
from .data import (TaskData, check_columns, check_texts, check_tokenizer, encode_labels, load_task, make_batches,
                   tokenize_texts)
from .loop import FitConfig, FitHistory, evaluate, fit
from .metrics import classification_metrics, plot_confusion_matrix

__all__ = ["baselines", "classification", "data", "lora", "loop", "metrics", "ner", "BertForSequenceClassification",
           "SequenceClassifierOutput", "freeze_lower_layers", "TaskData", "check_columns", "check_texts",
           "check_tokenizer", "encode_labels", "load_task", "make_batches", "tokenize_texts", "FitConfig",
           "FitHistory", "evaluate", "fit", "classification_metrics", "plot_confusion_matrix"]
