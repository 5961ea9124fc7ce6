r"""Knowledge distillation (Hinton et al., 2015): train a small student on a large teacher's soft targets.

The teacher's logits :math:`v` and the student's :math:`z` are softened with a temperature
:math:`T`, :math:`p_i = \mathrm{softmax}(v/T)_i`, :math:`q_i = \mathrm{softmax}(z/T)_i`, and the
student minimises

.. math::
    \mathcal{L} = \alpha\, T^2\, \mathrm{KL}(p \,\|\, q) + (1 - \alpha)\, \mathrm{CE}(z, y).

A higher T spreads the teacher's probability over the wrong classes, whose ratios ("a 'how many'
question is more like a 'how much' one than a 'who' one") carry what the hard label does not.
The gradient of the soft term is :math:`\partial\,\mathrm{KL}/\partial z_i = (q_i - p_i)/T`; for
large T and zero-mean logits it is about :math:`(z_i - v_i)/(K T^2)` for K classes (Hinton et al. §2.1),
so the factor :math:`T^2` keeps its size comparable to the hard-label term whatever T is.

Training reuses chapter 5's :func:`~course_lib.finetuning.loop.fit`: :func:`attach_teacher_logits`
puts each batch's teacher logits into the batch, and :class:`DistillationStudent` turns them
into the loss above.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..finetuning.classification import SequenceClassifierOutput
from ..transformer.layers import masked_mean


def _check(temperature, alpha) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"temperature must be a number > 0 (1 = the ordinary softmax), got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the weight of the soft-target term), got {alpha!r}")


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last axis."""
    _check(temperature, 0.0)
    return torch.softmax(logits / temperature, dim=-1)                       # p_i = exp(v_i/T) / sum_j exp(v_j/T)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
                      temperature: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    r"""``alpha T^2 KL(softmax(v/T) || softmax(z/T)) + (1 - alpha) CE(z, y)``, averaged over the batch.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor (B, K)
    labels : LongTensor (B,) or None
        Needed when ``alpha < 1``.
    temperature : float > 0
    alpha : float in [0, 1]
        1 = soft targets only; 0 = ordinary cross-entropy on the hard labels.
    """
    _check(temperature, alpha)
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(f"student and teacher logits must both be (B, K), got {tuple(student_logits.shape)} and "
                         f"{tuple(teacher_logits.shape)}: the teacher must be trained on the same classes")
    T = float(temperature)
    log_q = F.log_softmax(student_logits / T, dim=-1)                         # log q_i, (B, K)
    p = F.softmax(teacher_logits.detach().to(log_q.dtype) / T, dim=-1)       # p_i, the soft targets
    soft = F.kl_div(log_q, p, reduction="batchmean") * T * T                  # T^2 sum_i p_i log(p_i / q_i)
    if alpha == 1.0:
        return alpha * soft
    if labels is None:
        raise ValueError(f"alpha={alpha} < 1 mixes in the hard-label loss: pass labels (B,)")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)   # + (1 - a) CE(z, y)


class DistillationStudent(nn.Module):
    """Wrap a classifier so that a batch carrying ``teacher_logits`` is trained with :func:`distillation_loss`.

    Without ``teacher_logits`` (evaluation batches) the loss is the plain cross-entropy, so
    chapter 5's ``fit`` and ``evaluate`` work unchanged.
    """

    def __init__(self, student: nn.Module, temperature: float = 2.0, alpha: float = 0.5):
        super().__init__()
        _check(temperature, alpha)
        self.student, self.temperature, self.alpha = student, float(temperature), float(alpha)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, teacher_logits=None,
                **unused) -> SequenceClassifierOutput:
        out = self.student(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           labels=labels if teacher_logits is None else None)
        if teacher_logits is None:
            return out
        loss = distillation_loss(out.logits, teacher_logits, labels, self.temperature, self.alpha)
        return SequenceClassifierOutput(loss, out.logits)


def attach_teacher_logits(batches: list[dict], teacher_logits) -> list[dict]:
    """Copies of ``batches`` with ``teacher_logits``: the rows of ``teacher_logits`` (N, K) that each
    batch's ``index`` names."""
    t = torch.as_tensor(teacher_logits, dtype=torch.float32)
    if t.ndim != 2:
        raise ValueError(f"teacher_logits must be (N, K), one row per training example, got {tuple(t.shape)}")
    out = []
    for b in batches:
        if "index" not in b:
            raise ValueError("each batch needs an 'index' (make_batches adds it) to find its teacher rows")
        if int(b["index"].max()) >= len(t):
            raise ValueError(f"a batch refers to example {int(b['index'].max())} but the teacher has logits for "
                             f"{len(t)} examples: use the teacher logits of the same training split")
        out.append({**b, "teacher_logits": t[b["index"]]})                     # (B, K)
    return out


@torch.no_grad()
def mean_pooled_features(encoder: nn.Module, batches: list[dict]) -> torch.Tensor:
    """Mean of the last hidden states over real tokens, for every example in original order: (N, D)."""
    encoder.eval()
    feats, index = [], []
    for b in batches:
        h = encoder(b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state   # (B, T, D)
        feats.append(masked_mean(h, b["attention_mask"]))                                   # mean over real tokens
        index.append(b["index"])
    order = torch.argsort(torch.cat(index))
    return torch.cat(feats)[order]
