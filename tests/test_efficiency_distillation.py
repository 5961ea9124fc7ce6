"""Knowledge distillation: the loss, its gradient (Hinton et al. 2015, eq. 2-3) and training through fit."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.efficiency import distillation as D
from course_lib.finetuning import loop
from course_lib.finetuning.classification import BertForSequenceClassification
from course_lib.finetuning.data import make_batches
from course_lib.transformer.bert import BertConfig


def _logits(seed, B=5, K=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, generator=g) * 3


def test_loss_is_written_out_formula():
    z, v = _logits(0), _logits(1)
    y = torch.tensor([0, 1, 2, 3, 4])
    T, a = 3.0, 0.7
    p, log_q = torch.softmax(v / T, -1), torch.log_softmax(z / T, -1)
    kl = (p * (p.log() - log_q)).sum(-1).mean()
    want = a * T * T * kl + (1 - a) * F.cross_entropy(z, y)
    torch.testing.assert_close(D.distillation_loss(z, v, y, T, a), want)
    torch.testing.assert_close(D.distillation_loss(z, v, y, 1.0, 0.0), F.cross_entropy(z, y))
    assert float(D.distillation_loss(v, v, None, 4.0, 1.0)) == pytest.approx(0.0, abs=1e-6)   # q = p: nothing to learn


def test_gradient_is_q_minus_p_over_T_and_T_squared_keeps_its_scale():
    v = _logits(1, B=1)
    for T in (1.0, 4.0, 20.0):
        z = _logits(0, B=1).requires_grad_()
        F.kl_div(torch.log_softmax(z / T, -1), torch.softmax(v / T, -1), reduction="batchmean").backward()
        torch.testing.assert_close(z.grad, (torch.softmax(z / T, -1) - torch.softmax(v / T, -1)) / T)
    # high temperature, zero-mean logits: T^2 x gradient -> (z - v) / K (Hinton et al. eq. 3)
    z0, v0 = _logits(0, B=1), _logits(1, B=1)
    z0, v0 = z0 - z0.mean(), v0 - v0.mean()
    errors = []
    for T in (10.0, 100.0, 1000.0):
        z = z0.double().requires_grad_()
        D.distillation_loss(z, v0.double(), None, temperature=T, alpha=1.0).backward()
        errors.append(float((z.grad - (z0 - v0).double() / 6).abs().max()))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 3e-3      # the approximation improves as T grows


def test_soft_targets_flatten_with_temperature():
    v = _logits(2, B=1)
    ent = [float(-(p * p.log()).sum()) for p in (D.soft_targets(v, T) for T in (0.5, 1, 4, 50))]
    assert ent == sorted(ent) and ent[-1] == pytest.approx(torch.log(torch.tensor(6.0)).item(), abs=0.01)


def _tiny_student(seed=0):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(cfg, num_labels=3)


def test_student_learns_the_teacher_through_fit(one_torch_thread):
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(1, 50, (int(n),), generator=g).tolist() for n in torch.randint(3, 9, (96,), generator=g)]
    labels = torch.tensor([i[0] % 3 for i in ids])                         # the first token decides the class
    teacher = F.one_hot(labels, 3).float() * 4 - 2                           # a confident, correct teacher
    batches = make_batches(ids, labels.numpy(), batch_size=16)
    train = D.attach_teacher_logits(batches, teacher)
    assert all(torch.equal(b["teacher_logits"], teacher[b["index"]]) for b in train)
    student = D.DistillationStudent(_tiny_student(), temperature=2.0, alpha=1.0)
    before = loop.evaluate(student, batches)["accuracy"]
    loop.fit(student, train, epochs=30, lr=3e-3, progress=None)
    after = loop.evaluate(student, batches)["accuracy"]
    assert after > max(0.8, before + 0.3)


def test_bad_input_is_refused():
    z = _logits(0)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        D.distillation_loss(z, z, None, temperature=0)
    with pytest.raises(ValueError, match="alpha must be in"):
        D.distillation_loss(z, z, None, alpha=2)
    with pytest.raises(ValueError, match="pass labels"):
        D.distillation_loss(z, z, None, alpha=0.5)
    with pytest.raises(ValueError, match="same classes"):
        D.distillation_loss(z, z[:, :3], None, alpha=1.0)
    with pytest.raises(ValueError, match="teacher logits of the same training split"):
        D.attach_teacher_logits([{"index": torch.tensor([7])}], torch.zeros(3, 2))


TEACHER_PREFIX = {"finetuned": "teacher_logits", "frozen": "teacher_frozen_logits"}


def test_shipped_teacher_logits_are_intact_and_match_their_record():
    import json

    import numpy as np

    from course_lib.finetuning.data import trec_splits
    from course_lib.transformer.checkpoint import checkpoint_path, verify_checkpoint
    folder = checkpoint_path("distilled")
    sums = verify_checkpoint(folder)
    assert {"history_finetuned.json", "history_frozen.json", "teacher_head.npy"} <= set(sums)
    task = trec_splits(seed=0)
    acc = {}
    for teacher, prefix in TEACHER_PREFIX.items():
        hist = json.loads((folder / f"history_{teacher}.json").read_text())
        for split, df in (("train", task.train), ("valid", task.valid), ("test", task.test)):
            assert f"{prefix}_{split}.npy" in sums
            logits = np.load(folder / f"{prefix}_{split}.npy")
            assert logits.shape == (len(df), 6) and logits.dtype == np.float32
            acc[teacher, split] = float((logits.argmax(1) == df.label.to_numpy()).mean())
            assert acc[teacher, split] == pytest.approx(hist["accuracy"][split], abs=1e-9)
    assert acc["finetuned", "test"] > acc["frozen", "test"] + 0.05
    # the fine-tuned teacher is chapter 5's recipe: its test accuracy is chapter 5's, up to thread-order noise
    ch5 = json.loads((checkpoint_path("distilled").parents[1] / "benchmarks" / "results" /
                      "finetune-trec-ours-pretrained.json").read_text())
    assert acc["finetuned", "test"] == pytest.approx(ch5["test"]["accuracy"], abs=0.01)


def test_benchmark_record_matches_the_shipped_teachers():
    import json

    from course_lib.transformer.checkpoint import checkpoint_path
    root = checkpoint_path("distilled").parents[1]
    d = json.loads((root / "benchmarks" / "results" / "efficiency-compression-cpu.json").read_text())["distillation"]
    assert d["max_steps"] is None and set(d["teachers"]) == set(TEACHER_PREFIX)
    for teacher, t in d["teachers"].items():
        hist = json.loads((root / "checkpoints" / "distilled" / f"history_{teacher}.json").read_text())
        for split, a in t["teacher_accuracy"].items():
            assert a == pytest.approx(hist["accuracy"][split], abs=1e-4)
        assert [[r["temperature"], r["alpha"]] for r in t["runs"]] == d["grid"]
        best = max(r["valid_accuracy"] for r in t["runs"])                   # chosen on the validation split
        assert t["best_run"] == t["runs"][t["best"]] and t["best_run"]["valid_accuracy"] == best
