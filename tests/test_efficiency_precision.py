"""Mixed precision: bf16 autocast trains like fp32; fp16 underflow counted; fp16 + GradScaler on CUDA."""
import pytest
import torch

from course_lib.efficiency import precision as P
from course_lib.efficiency.workloads import random_lm_batches, tiny_gpt


@pytest.fixture
def small(one_torch_thread):
    return dict(n_layer=2, n_embd=32, n_head=2, vocab_size=97, n_positions=32)


def test_bf16_tracks_fp32(small):
    model = tiny_gpt(pretrained=False, **small)
    batches = random_lm_batches(1, 8, 16, 97, seed=0) * 6               # one batch, 6 steps: loss must fall
    runs = P.compare_precisions(model, batches, ("fp32", "bf16"))
    fp32, bf16 = runs["fp32"].losses, runs["bf16"].losses
    assert fp32[0] == pytest.approx(bf16[0], abs=0.05)                   # bf16 keeps ~3 significant digits
    assert fp32[-1] < fp32[0] - 0.3 and bf16[-1] < bf16[0] - 0.3
    assert abs(fp32[-1] - bf16[-1]) < 0.1
    assert len(runs["bf16"].step_seconds) == 6 and runs["bf16"].median_step() > 0
    for p in model.parameters():                                         # copies trained, the original untouched
        assert p.dtype == torch.float32


def test_autocast_runs_matmuls_in_bf16(small):
    model = tiny_gpt(pretrained=False, **small)
    x = torch.randint(97, (2, 8))
    with P.autocast_context("bf16", "cpu"):
        logits = model(x)
    assert logits.dtype == torch.bfloat16
    with P.autocast_context("fp32", "cpu"):
        assert model(x).dtype == torch.float32


def test_underflow_counts():
    g = torch.tensor([1e-9, 1e-7, 1e-5, 1e-3, 0.0, 70000.0])
    r1 = P.fp16_cast_underflow([g], 1.0)
    assert (r1["nonzero"], r1["underflow"], r1["subnormal"], r1["overflow"]) == (5, 1, 2, 1)
    r2 = P.fp16_cast_underflow([g], 2.0 ** 10)
    assert (r2["underflow"], r2["subnormal"], r2["overflow"]) == (0, 1, 1)
    assert r2["underflow_frac"] == 0.0 and r1["underflow_frac"] == pytest.approx(0.2)


def test_loss_scaling_rescues_tiny_gpt_gradients(one_torch_thread):
    model = tiny_gpt()                                                   # the trained checkpoint
    batch = random_lm_batches(1, 8, 64, 4096, seed=3)[0]
    r = {d["scale"]: d for d in P.fp16_underflow_by_scale(model, batch, (1.0, 2.0 ** 12))}
    assert r[1.0]["underflow"] > 100 and r[1.0]["subnormal_frac"] > 0.05     # many gradients lost or degraded in fp16
    assert r[2.0 ** 12]["underflow"] < r[1.0]["underflow"] / 20
    assert r[2.0 ** 12]["overflow"] == 0


def test_bad_input(small):
    model = tiny_gpt(pretrained=False, **small)
    with pytest.raises(ValueError, match="fp16 mixed precision with loss scaling is for CUDA"):
        P.train_with_precision(model, random_lm_batches(1, 2, 8, 97), "fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        P.autocast_context("int8")
    with pytest.raises(ValueError, match="batches is empty"):
        P.train_with_precision(model, [], "fp32")
    with pytest.raises(ValueError, match="scale must be a positive number"):
        P.fp16_cast_underflow([torch.ones(2)], 0)
    with pytest.raises(ValueError, match="grads is empty"):
        P.fp16_cast_underflow([])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 + GradScaler needs a CUDA GPU")
def test_fp16_gradscaler_cuda():
    model = tiny_gpt(pretrained=False, n_layer=2).cuda()
    batches = [tuple(t.cuda() for t in b) for b in random_lm_batches(1, 8, 32, 4096)] * 8
    runs = P.compare_precisions(model, batches, ("fp32", "fp16", "bf16"))
    assert runs["fp16"].scales and runs["fp16"].scales[0] == 2.0 ** 16
    assert abs(runs["fp16"].losses[-1] - runs["fp32"].losses[-1]) < 0.1
    assert runs["fp32"].losses[-1] < runs["fp32"].losses[0]
