r"""An MLM head for the real MiniLM encoder, and the loader of the shipped tiny BERT.

The offline MiniLM (``all-MiniLM-L6-v2``) is distributed as a *sentence encoder*: its checkpoint holds
``BertModel`` weights only, without ``cls.predictions.*``. Put a ``BertForMaskedLM`` on top and the
transform (dense + LayerNorm) and the output bias are random, so :math:`z = W_E\,\mathrm{LN}(\mathrm{GELU}(W_T h))`
scores words by their dot product with a *random* projection of :math:`h`: junk, however good :math:`h` is.

Because the decoder is tied to the word embeddings, which the encoder already has, only
:math:`W_T, b_T`, the LayerNorm and the bias :math:`b_V` (about 180 k numbers for D = 384) need training;
with the encoder frozen, the hidden states of the masked positions can be computed **once** and
the head trained on them (:func:`collect_masked_features`, :func:`train_head`). That is what
``tools/train_minilm_mlm_head.py`` does; ``checkpoints/minilm_mlm_head`` stores the head's tensors only.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..data import minilm_path
from ..transformer.bert import BertConfig, BertModel
from ..transformer.checkpoint import checkpoint_path, load_model, verify_checkpoint
from .heads import BertForMaskedLM, BertForPreTraining
from .masking import IGNORE_INDEX, mask_tokens

__all__ = ["HEAD_PREFIXES", "minilm_for_masked_lm", "head_state_dict", "freeze_encoder", "collect_masked_features",
           "train_head", "head_accuracy", "load_tiny_bert"]

HEAD_PREFIXES = ("cls.predictions.transform.", "cls.predictions.bias")


def minilm_for_masked_lm(head: str | Path | None = None, seed: int = 0) -> BertForMaskedLM:
    """MiniLM's real encoder + an MLM head: random (``head=None``, seeded) or loaded from a head folder.

    ``head="shipped"`` loads ``checkpoints/minilm_mlm_head`` (checksums verified).
    """
    torch.manual_seed(seed)
    encoder = BertModel.from_pretrained(minilm_path())
    model = BertForMaskedLM(encoder.config)
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    model.bert.load_state_dict(state)                            # the decoder is tied: it now holds W_E
    if head is not None:
        folder = checkpoint_path("minilm_mlm_head") if str(head) == "shipped" else Path(head)
        verify_checkpoint(folder)
        tensors = load_file(str(folder / "model.safetensors"))
        if set(tensors) != set(head_state_dict(model)):
            raise ValueError(f"{folder}/model.safetensors should hold exactly the MLM head's tensors "
                             f"{sorted(head_state_dict(model))}, got {sorted(tensors)}")
        model.load_state_dict(tensors, strict=False)
    return model.eval()


def head_state_dict(model: BertForMaskedLM) -> dict[str, torch.Tensor]:
    """The tensors a frozen-encoder head training changes: transform (dense, LayerNorm) and output bias."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(HEAD_PREFIXES)}


def freeze_encoder(model: BertForMaskedLM) -> int:
    """Freeze ``bert.*`` (and with it the tied decoder); returns the number of trainable parameters left."""
    for p in model.bert.parameters():
        p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def collect_masked_features(model: BertForMaskedLM, tokenizer, sentences: list[str], *, max_length: int = 64,
                            batch_size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask ``sentences`` (15 %, 80/10/10) once, run the frozen encoder, keep the masked positions.

    Returns
    -------
    features : FloatTensor (N, D)   final hidden states at the N chosen positions
    labels : LongTensor (N,)        the original token ids there
    """
    if not sentences:
        raise ValueError("collect_masked_features() needs at least one sentence")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    feats, labels = [], []
    for i in range(0, len(sentences), batch_size):
        enc = tokenizer(sentences[i:i + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        inputs, lab = mask_tokens(enc["input_ids"], vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                                  special_ids=tokenizer.all_special_ids, generator=g)
        h = model.bert(inputs, attention_mask=enc["attention_mask"]).last_hidden_state        # (B, T, D)
        chosen = lab != IGNORE_INDEX
        feats.append(h[chosen])                                                               # (n, D)
        labels.append(lab[chosen])
    return torch.cat(feats), torch.cat(labels)


def train_head(model: BertForMaskedLM, features: torch.Tensor, labels: torch.Tensor, *, steps: int = 300,
               batch_size: int = 256, lr: float = 2e-3, seed: int = 0, log_every: int = 0) -> list[float]:
    """Adam on the head only (encoder frozen), minibatches of cached masked positions; returns the losses."""
    freeze_encoder(model)
    params = [p for p in model.cls.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(labels), (batch_size,), generator=g)
        logits = model.cls.predictions(features[idx])                              # (b, D) -> (b, V)
        loss = F.cross_entropy(logits, labels[idx])                                # -log p(original token)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:>4}/{steps} | head loss {sum(losses[-log_every:]) / log_every:.3f}", flush=True)
    return losses


@torch.no_grad()
def head_accuracy(model: BertForMaskedLM, features: torch.Tensor, labels: torch.Tensor,
                  batch_size: int = 512) -> float:
    """Fraction of cached masked positions whose top-1 prediction is the original token."""
    model.eval()
    hits = sum(int((model.cls.predictions(features[i:i + batch_size]).argmax(-1) == labels[i:i + batch_size]).sum())
               for i in range(0, len(labels), batch_size))
    return hits / max(len(labels), 1)


def load_tiny_bert(folder: str | Path | None = None) -> BertForPreTraining:
    """The tiny BERT pre-trained by ``tools/pretrain_tiny_bert.py`` (``checkpoints/tiny_bert``), checksums verified."""
    folder = checkpoint_path("tiny_bert") if folder is None else Path(folder)
    return load_model(folder, BertForPreTraining, BertConfig)


def read_history(folder: str | Path) -> dict:
    """A checkpoint's ``history.json`` (training curves, settings, results)."""
    return json.loads((Path(folder) / "history.json").read_text(encoding="utf-8"))
