"""Bad input to course_lib.attention fails at our API with a clear message; degenerate input
(no queries, no keys, fully masked rows, all -inf rows) has a defined result, equal in NumPy and torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.attention import MultiHeadAttention, causal_mask, padding_mask, position, tiled
from course_lib.attention import inspect as ai
from course_lib.attention import numpy_attention as npa
from course_lib.attention import softmax as sm
from course_lib.attention import torch_attention as tta

NP_ATTENTION = [npa.scaled_dot_product_attention, tiled.tiled_attention]
TORCH_ATTENTION = [tta.scaled_dot_product_attention, tiled.tiled_attention_torch]


def _np(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in shapes]


def _t(*shapes, dtype=torch.float64):
    return [torch.from_numpy(a).to(dtype) for a in _np(*shapes)]


# ----------------------------------------------------------------------------- shapes and types

@pytest.mark.parametrize("fn", NP_ATTENTION + TORCH_ATTENTION)
def test_batch_dimensions_that_do_not_broadcast(fn):
    q, k, v = _np((2, 5, 4), (3, 6, 4), (3, 6, 4))
    if fn in TORCH_ATTENTION:
        q, k, v = (torch.from_numpy(x) for x in (q, k, v))
    with pytest.raises(ValueError, match=r"batch dimensions of q \(2, 5, 4\) and k \(3, 6, 4\).*equal or 1"):
        fn(q, k, v)


@pytest.mark.parametrize("fn", NP_ATTENTION)
def test_numpy_attention_accepts_lists_and_rejects_non_numbers(fn):
    q, k, v = _np((3, 4), (5, 4), (5, 2))
    out = fn(q.tolist(), k, v, mask=[True, True, False, True, True]) if fn is tiled.tiled_attention else \
        fn(q.tolist(), k, v, [True, True, False, True, True])[0]
    ref, _ = npa.scaled_dot_product_attention(q, k, v, np.array([1, 1, 0, 1, 1], bool))
    np.testing.assert_allclose(out, ref, atol=1e-12)
    with pytest.raises(TypeError, match="q must hold real numbers.*dtype"):
        fn([["a", "b"]], k, v)
    with pytest.raises(TypeError, match="k is a torch.Tensor.*numpy()"):
        fn(q, torch.from_numpy(k), v)
    with pytest.raises(ValueError, match=r"q, k, v need at least 2 dimensions"):
        fn(q[0], k, v)
    with pytest.raises(ValueError, match="mask must be boolean.*astype\\(bool\\)"):
        fn(q, k, v, [1, 1, 0, 1, 1])


@pytest.mark.parametrize("fn", TORCH_ATTENTION)
def test_torch_attention_rejects_lists_ints_mixed_dtypes_and_devices(fn):
    q, k, v = _t((3, 4), (5, 4), (5, 2))
    with pytest.raises(TypeError, match=r"q must be a torch.Tensor, got list.*torch.as_tensor"):
        fn(q.tolist(), k, v)
    with pytest.raises(TypeError, match=r"mask must be a torch.Tensor, got list"):
        fn(q, k, v, [True] * 5)
    with pytest.raises(TypeError, match=r"q must be a floating-point tensor, got dtype torch.int64.*\.float\(\)"):
        fn(q.long(), k.long(), v.long())
    with pytest.raises(TypeError, match=r"one dtype.*q torch.float64, k torch.float32"):
        fn(q, k.float(), v)
    with pytest.raises(ValueError, match="mask must be boolean"):
        fn(q, k, v, torch.ones(5))


@pytest.mark.parametrize("fn", NP_ATTENTION + TORCH_ATTENTION)
@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_must_be_a_finite_positive_number(fn, scale):
    q, k, v = _np((3, 4), (5, 4), (5, 2))
    if fn in TORCH_ATTENTION:
        q, k, v = (torch.from_numpy(x) for x in (q, k, v))
    with pytest.raises(ValueError, match="scale must be"):
        fn(q, k, v, scale=scale)


def test_zero_head_dimension_is_refused():
    q, k, v = _np((3, 0), (5, 0), (5, 2))
    with pytest.raises(ValueError, match="head dimension d_k.*is 0"):
        npa.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("block_size", [0, -3, 2.5, True])
def test_block_size_must_be_a_positive_integer(block_size):
    q, k, v = _np((4, 4), (4, 4), (4, 4))
    error = TypeError if isinstance(block_size, (bool, float)) else ValueError
    with pytest.raises(error, match="block_size must be"):
        tiled.tiled_attention(q, k, v, block_size=block_size)
    with pytest.raises(error, match="block_size must be"):
        tiled.tiled_attention_torch(*(torch.from_numpy(x) for x in (q, k, v)), block_size=block_size)
    with pytest.raises(error, match="block_size must be"):
        tiled.online_softmax(q[0], block_size=block_size)


# ----------------------------------------------------------------------------- degenerate sizes

@pytest.mark.parametrize("T_q, T_k", [(0, 5), (3, 0), (0, 0)])
def test_no_queries_or_no_keys_give_the_same_defined_result_everywhere(T_q, T_k):
    """No keys: every query has nothing to attend to -> zero weights and zero output (as a fully
    masked row); no queries: empty outputs. NumPy, torch and the tiled versions agree."""
    q, k, v = _np((2, T_q, 4), (2, T_k, 4), (2, T_k, 3))
    out, w = npa.scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, T_q, 3) and w.shape == (2, T_q, T_k)
    assert (out == 0).all() if T_k == 0 else out.size == 0
    out_t, w_t = tta.scaled_dot_product_attention(*(torch.from_numpy(x) for x in (q, k, v)))
    assert tuple(out_t.shape) == (2, T_q, 3) and tuple(w_t.shape) == (2, T_q, T_k)
    np.testing.assert_array_equal(out_t.numpy(), out)
    for causal in (False, True):
        np.testing.assert_array_equal(tiled.tiled_attention(q, k, v, causal=causal, block_size=2), out)
        out_tt = tiled.tiled_attention_torch(*(torch.from_numpy(x) for x in (q, k, v)), causal=causal, block_size=2)
        np.testing.assert_array_equal(out_tt.numpy(), out)


def test_fully_masked_rows_are_zero_in_every_implementation():
    q, k, v = _np((2, 4, 3), (2, 4, 3), (2, 4, 2))
    mask = np.ones((2, 4, 4), bool)
    mask[1] = False                                              # the whole second sequence hidden
    mask[0, 2] = False                                           # one query row of the first
    out, w = npa.scaled_dot_product_attention(q, k, v, mask)
    assert (w[1] == 0).all() and (out[1] == 0).all() and (w[0, 2] == 0).all() and (out[0, 2] == 0).all()
    np.testing.assert_allclose(w[0, [0, 1, 3]].sum(-1), 1.0)
    tq, tk, tv, tm = (torch.from_numpy(x) for x in (q, k, v, mask))
    np.testing.assert_allclose(tta.scaled_dot_product_attention(tq, tk, tv, tm)[0].numpy(), out, atol=1e-12)
    np.testing.assert_allclose(tiled.tiled_attention(q, k, v, mask, block_size=3), out, atol=1e-12)
    np.testing.assert_allclose(tiled.tiled_attention_torch(tq, tk, tv, tm, block_size=3).numpy(), out, atol=1e-12)


# ----------------------------------------------------------------------------- softmax

@pytest.mark.parametrize("fn", [sm.softmax, lambda x: sm.softmax_torch(torch.from_numpy(x)).numpy(),
                                lambda x: np.stack([tiled.online_softmax(r, 2) for r in x])])
def test_an_all_minus_inf_row_gives_zeros_not_nan(fn):
    x = np.array([[1.0, -np.inf, 2.0], [-np.inf, -np.inf, -np.inf]])
    y = fn(x)
    np.testing.assert_allclose(y[0], sm.softmax(np.array([1.0, 2.0]))[[0]].tolist() + [0.0]
                               + sm.softmax(np.array([1.0, 2.0]))[[1]].tolist(), atol=1e-15)
    assert (y[1] == 0).all()


def test_log_softmax_and_logsumexp_of_all_minus_inf_and_empty_rows():
    x = np.array([[0.0, -800.0], [-np.inf, -np.inf]])
    assert np.isneginf(sm.log_softmax(x)[1]).all() and sm.log_softmax(x)[0, 1] == -800.0
    assert np.isneginf(sm.logsumexp(x)[1])
    assert sm.logsumexp(np.zeros((3, 0))).tolist() == [-np.inf] * 3
    assert sm.softmax(np.zeros((3, 0))).shape == (3, 0)
    assert sm.softmax_torch(torch.zeros(3, 0)).shape == (3, 0)
    assert tiled.online_softmax(np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_softmax_refuses_nan_and_plus_inf(bad):
    x = np.array([1.0, bad, 0.0])
    for fn in (sm.softmax, sm.log_softmax, sm.logsumexp, lambda a: sm.softmax_torch(torch.from_numpy(a)),
               tiled.online_softmax):
        with pytest.raises(ValueError, match=r"NaN or \+inf.*use -inf"):
            fn(x)


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_finite_and_positive(temperature):
    with pytest.raises(ValueError, match="temperature must be"):
        sm.softmax(np.ones(3), temperature=temperature)
    with pytest.raises(ValueError, match="temperature must be"):
        sm.softmax_torch(torch.ones(3), temperature=temperature)


def test_softmax_argument_errors():
    with pytest.raises(ValueError, match="axis 2 is out of range.*\\(2, 3\\)"):
        sm.softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="at least one dimension"):
        sm.softmax(np.float64(3.0))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        sm.softmax_torch(np.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        sm.softmax_torch(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        sm.softmax_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="same shape"):
        sm.softmax_backward_torch(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"one vector of shape \(n,\)"):
        tiled.online_softmax(np.ones((2, 2)))
    np.testing.assert_allclose(sm.softmax([1, 2, 3]), sm.softmax(np.array([1.0, 2.0, 3.0])))  # ints are fine


# ----------------------------------------------------------------------------- multi-head attention

def test_multi_head_attention_key_width_dtype_and_shape_errors():
    mha = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"key has width 6.*expects embed_dim=8"):
        mha(x, torch.randn(2, 4, 6, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"query has dtype torch.float32 but the weights are torch.float64"):
        mha(x.float())
    with pytest.raises(TypeError, match="query must be a torch.Tensor"):
        mha(x.tolist())
    with pytest.raises(ValueError, match=r"query must have shape \(B, T, D\)"):
        mha(x[0])
    params = {k: t.detach().numpy() for k, t in mha.state_dict().items()}
    with pytest.raises(ValueError, match=r"key has width 6.*k_proj.weight \(8, 8\)"):
        npa.multi_head_attention(x.numpy(), np.ones((2, 4, 6)), np.ones((2, 4, 6)), params, 2)
    with pytest.raises(KeyError, match="lacks.*out_proj.weight"):
        npa.multi_head_attention(x.numpy(), x.numpy(), x.numpy(), {"q_proj.weight": params["q_proj.weight"]}, 2)
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        npa.multi_head_attention(x.numpy(), x.numpy(), x.numpy(), params, 0)


@pytest.mark.parametrize("embed_dim, num_heads, error, words", [
    (8, 0, ValueError, "num_heads must be >= 1"), (0, 1, ValueError, "embed_dim must be >= 1"),
    (8.0, 2, TypeError, "embed_dim must be an integer"), (8, 3, ValueError, "not divisible by num_heads=3")])
def test_multi_head_attention_constructor(embed_dim, num_heads, error, words):
    with pytest.raises(error, match=words):
        MultiHeadAttention(embed_dim, num_heads)


@pytest.mark.parametrize("kwargs", [{"add_bias_kv": True}, {"add_zero_attn": True}])
def test_from_torch_refuses_extra_keys(kwargs):
    with pytest.raises(ValueError, match="add_bias_kv=False, add_zero_attn=False"):
        MultiHeadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, **kwargs))
    with pytest.raises(TypeError, match="torch.nn.MultiheadAttention"):
        MultiHeadAttention.from_torch(torch.nn.Linear(8, 8))


def test_split_and_merge_heads_check_their_input():
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        npa.split_heads(np.ones((4, 8)), 2)
    with pytest.raises(ValueError, match=r"\(B, H, T, Dh\)"):
        tta.merge_heads(torch.ones(2, 4, 8))
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        tta.split_heads(torch.ones(1, 2, 8), 0)


# ----------------------------------------------------------------------------- masks, positions, inspection

def test_mask_builders_check_their_arguments():
    with pytest.raises(ValueError, match="T must be >= 0"):
        causal_mask(-1)
    with pytest.raises(TypeError, match="T must be an integer"):
        causal_mask(4.0)
    with pytest.raises(ValueError, match="xp must be 'numpy' or 'torch'"):
        causal_mask(4, xp="jax")
    with pytest.raises(ValueError, match=r"every length must lie in 0..T=5.*\[3, 7\]"):
        padding_mask([3, 7], 5)
    with pytest.raises(ValueError, match="1-D sequence of B integers"):
        padding_mask([[3]], 5, xp="numpy")
    assert causal_mask(0, xp="numpy").shape == (0, 0)
    assert not padding_mask([0, 2], 2, xp="numpy")[0].any()        # length 0 hides every key


def test_position_functions_check_their_arguments():
    with pytest.raises(ValueError, match="num_positions must be >= 0"):
        position.sinusoidal_encoding(-2, 8)
    with pytest.raises(ValueError, match="dim must be >= 2"):
        position.rope_cos_sin(4, 0)
    with pytest.raises(ValueError, match="base must be > 0"):
        position.sinusoidal_encoding_torch(4, 8, base=-1.0)
    with pytest.raises(ValueError, match="even"):
        position.rotate_half(np.ones((2, 5)))
    with pytest.raises(ValueError, match="max_positions must be >= 1"):
        position.LearnedPositionalEmbedding(0, 8)
    with pytest.raises(ValueError, match=r"x must be \(B, T, D=8\)"):
        position.LearnedPositionalEmbedding(4, 8)(torch.ones(1, 3, 6))
    assert position.sinusoidal_encoding(0, 8).shape == (0, 8)


def test_attention_statistics_check_their_arguments():
    w = np.full((2, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match="3 tokens for attention over 3 keys|tokens"):
        ai.token_mass(w, ["a", "b"], "a")
    with pytest.raises(TypeError, match="offset must be an integer"):
        ai.offset_mass(w, 1.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., T_q, T_k\)"):
        ai.attention_entropy(np.ones(3))


def test_backward_checks_the_shapes_of_its_gradients():
    q, k, v = _np((1, 4, 3), (1, 5, 3), (2, 5, 2))                 # v has the larger batch
    out, w = npa.scaled_dot_product_attention(q, k, v)
    dq, dk, dv = npa.scaled_dot_product_attention_backward(np.ones_like(out), q, k, v, w)
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
    with pytest.raises(ValueError, match=r"weights has shape \(1, 5, 4\), expected \(1, 4, 5\).*forward pass"):
        npa.scaled_dot_product_attention_backward(np.ones_like(out), q, k, v, np.swapaxes(w, -1, -2))
    with pytest.raises(ValueError, match=r"grad_out has shape \(4, 2\), expected \(2, 4, 2\)"):
        npa.scaled_dot_product_attention_backward(np.ones((4, 2)), q, k, v, w)


def test_an_empty_batch_gives_empty_outputs():
    q, k, v = _np((0, 3, 4), (0, 5, 4), (0, 5, 2))
    out, w = npa.scaled_dot_product_attention(q, k, v)
    assert out.shape == (0, 3, 2) and w.shape == (0, 3, 5)
    assert tiled.tiled_attention(q, k, v, block_size=2).shape == (0, 3, 2)
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    assert tuple(tta.scaled_dot_product_attention(tq, tk, tv)[0].shape) == (0, 3, 2)
    assert tuple(tiled.tiled_attention_torch(tq, tk, tv, block_size=2).shape) == (0, 3, 2)
    mha = MultiHeadAttention(8, 2)
    out, w = mha(torch.zeros(0, 3, 8))
    assert tuple(out.shape) == (0, 3, 8) and tuple(w.shape) == (0, 2, 3, 3)
