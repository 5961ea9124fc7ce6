"""torch.compile: same outputs (1e-5) and gradients as eager; the comparison helpers' results."""
import pytest
import torch

from course_lib.efficiency import compilation as C
from course_lib.efficiency.workloads import random_lm_batches, tiny_gpt


def test_interleaved_medians_order_and_errors():
    calls = []
    t = C.interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1)
    assert calls == ["a", "b"] * 3 and set(t) == {"a", "b"}
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        C.interleaved_medians({"a": lambda: None}, repeats=0)


def test_hf_port_matches(one_torch_thread):
    model = tiny_gpt(pretrained=False, n_layer=2, n_embd=32, n_head=2, vocab_size=97, n_positions=32).eval()
    hf = C.hf_gpt_from_ours(model)
    x = torch.randint(97, (2, 10))
    torch.testing.assert_close(hf(input_ids=x).logits, model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_gpt_train_step_matches_eager(one_torch_thread):
    model = tiny_gpt(pretrained=False, n_layer=1, n_embd=32, n_head=2, vocab_size=97, n_positions=16)
    batch = random_lm_batches(1, 2, 8, 97)[0]
    r = C.compare_gpt_train_step(model, batch, repeats=2)
    assert r["loss_diff"] < 1e-5 and r["max_grad_diff"] < 1e-5
    assert r["compile_s"] > 0 and r["ours_compiled_s"] > 0 and r["hf_attn_implementation"] == "sdpa"
    assert r["graphs_compiled"] >= 1
