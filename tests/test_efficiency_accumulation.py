"""Gradient accumulation: k micro-batches == one large batch; the wrong normalisations measured."""
import pytest
import torch

from course_lib.efficiency import accumulation as acc
from course_lib.efficiency.workloads import random_lm_batches, tiny_gpt


@pytest.fixture
def model(one_torch_thread):
    return tiny_gpt(pretrained=False, n_layer=2, n_embd=32, n_head=2, vocab_size=97, n_positions=16).double()


def _batch(lengths=None):
    batch = random_lm_batches(1, 6, 12, 97, seed=1)[0]
    return acc.pad_lm_batch(batch, lengths) if lengths else batch


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_accumulation_equals_big_batch(model, k):
    batch = _batch([12, 3, 12, 7, 1, 9])                                  # padded, unequal token counts
    big = acc.big_batch_gradients(model, batch)
    small = acc.accumulated_gradients(model, acc.split_batch(batch, k), "tokens")
    assert acc.max_grad_difference(big, small) < 1e-6


def test_accumulation_float32_tiny_gpt(one_torch_thread):
    model = tiny_gpt(pretrained=False, n_layer=2)
    batch = random_lm_batches(1, 8, 32, 4096, seed=2)[0]
    big = acc.big_batch_gradients(model, batch)
    small = acc.accumulated_gradients(model, acc.split_batch(batch, 4))
    assert acc.max_grad_difference(big, small) < 1e-6


def test_mean_of_means_exact_only_for_equal_counts(model):
    equal = _batch()
    big = acc.big_batch_gradients(model, equal)
    assert acc.max_grad_difference(big, acc.accumulated_gradients(model, acc.split_batch(equal, 3),
                                                                  "mean_of_means")) < 1e-6
    padded = _batch([12, 12, 2, 1, 12, 12])
    big = acc.big_batch_gradients(model, padded)
    wrong = acc.accumulated_gradients(model, acc.split_batch(padded, 3), "mean_of_means")
    scale = max(float(g.abs().max()) for g in big.values())
    assert acc.max_grad_difference(big, wrong) > 0.05 * scale             # clearly wrong, not round-off


def test_sum_of_means_is_k_times_too_big(model):
    batch = _batch()
    big = acc.big_batch_gradients(model, batch)
    wrong = acc.accumulated_gradients(model, acc.split_batch(batch, 3), "sum_of_means")
    for name in big:
        torch.testing.assert_close(wrong[name], 3 * big[name], atol=1e-9, rtol=1e-9)


def test_train_step_matches_big_batch_step(model):
    batch = _batch([12, 4, 12, 8, 2, 12])
    twin = tiny_gpt(pretrained=False, n_layer=2, n_embd=32, n_head=2, vocab_size=97, n_positions=16).double()
    twin.load_state_dict(model.state_dict())
    opt_a, opt_b = (torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (model, twin))
    loss = acc.train_step_accumulated(model, opt_a, acc.split_batch(batch, 3))
    acc.big_batch_gradients(twin, batch)
    opt_b.step()
    s, n = acc.token_loss_sum(tiny_gpt(pretrained=False, n_layer=2, n_embd=32, n_head=2, vocab_size=97,
                                       n_positions=16).double(), batch)
    assert loss == pytest.approx(float(s.detach()) / n, rel=1e-9)
    for (na, pa), (_, pb) in zip(model.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-9, rtol=1e-7, msg=na)


def test_bad_input(model):
    batch = _batch()
    with pytest.raises(ValueError, match="normalisation must be one of"):
        acc.accumulated_gradients(model, [batch], "mean")
    with pytest.raises(ValueError, match="micro_batches is empty"):
        acc.accumulated_gradients(model, [])
    with pytest.raises(ValueError, match="cannot cut a batch of 6 rows"):
        acc.split_batch(batch, 7)
    with pytest.raises(ValueError, match="one length per row"):
        acc.pad_lm_batch(batch, [3, 4])
    x, y = batch
    with pytest.raises(ValueError, match="no real token"):
        acc.big_batch_gradients(model, (x, torch.full_like(y, acc.IGNORE_INDEX)))
    with pytest.raises(TypeError, match="a batch must be a tuple"):
        acc.token_loss_sum(model, x)
