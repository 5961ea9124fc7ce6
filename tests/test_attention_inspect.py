"""course_lib.attention.inspect: attention maps of the real all-MiniLM-L6-v2, recomputed by us."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.attention import inspect as ai

SENTENCES = ["The cat sat on the mat because it was tired.", "Hello world."]


@pytest.fixture(scope="module")
def minilm():
    transformers = pytest.importorskip("transformers")
    from course_lib.data import minilm_path
    transformers.utils.logging.disable_progress_bar()
    path = minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def run(minilm):
    model, tokenizer = minilm
    return ai.run_model(model, tokenizer, SENTENCES)


def test_run_model_shapes_and_padding(run):
    B, T = run.attention_mask.shape
    assert B == 2 and run.tokens[0][0] == "[CLS]" and run.tokens[0][-1] == "[SEP]"
    assert run.attentions.shape == (6, B, 12, T, T)
    assert run.hidden_states.shape == (7, B, T, 384)
    assert run.tokens[1][-1] == "[PAD]" and not run.attention_mask[1, -1]
    np.testing.assert_allclose(run.attentions.sum(-1), 1.0, atol=1e-5)
    # padded keys of the short sentence receive exactly zero weight from every query
    assert np.all(run.attentions[:, 1, :, :, ~run.attention_mask[1]] == 0.0)


def test_attention_maps_single_sentence(minilm, run):
    model, tokenizer = minilm
    tokens, att = ai.attention_maps(model, tokenizer, SENTENCES[0])
    assert tokens == run.tokens[0] and att.shape == (6, 12, len(tokens), len(tokens))
    np.testing.assert_allclose(att, run.attentions[:, 0], atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("layer", [0, 5])
def test_recompute_equals_hugging_face(minilm, run, layer, backend):
    model, tokenizer = minilm
    captured = {}
    handle = model.encoder.layer[layer].attention.self.register_forward_hook(
        lambda module, args, out: captured.update(context=out[0].detach().numpy()))
    try:
        fresh = ai.run_model(model, tokenizer, SENTENCES)     # the hook sees this forward pass
    finally:
        handle.remove()
    context, weights = ai.recompute_attention(model, fresh.hidden_states[layer], layer,
                                              fresh.attention_mask, backend=backend)
    assert weights.shape == run.attentions[layer].shape
    assert np.abs(weights - run.attentions[layer]).max() <= 1e-5
    assert np.abs(context - captured["context"]).max() <= 1e-4


def test_weighted_value_norms_sum_to_the_attention_output(minilm, run):
    model, _ = minilm
    layer = 2
    x, a = run.hidden_states[layer], run.attentions[layer]            # (B, T, D), (B, H, T, T)
    norms = ai.weighted_value_norms(model, x, a, layer)
    assert norms.shape == a.shape and np.all(norms >= 0)
    assert np.all(norms[1][..., ~run.attention_mask[1]] == 0.0)      # padding moves nothing
    # the per-head vectors a_ij f_h(x_j), summed over h and j, are the sub-layer output W_O(context)
    context, _ = ai.recompute_attention(model, x, layer, run.attention_mask)
    w_o = model.encoder.layer[layer].attention.output.dense.weight.detach().double().numpy()
    total = context @ w_o.T                                           # (B, T, D)
    # triangle inequality: |sum of vectors| <= sum of their lengths, per query
    assert np.all(np.linalg.norm(total, axis=-1) <= norms.sum(axis=(1, 3)) + 1e-6)
    # brute force with the model's own modules for a few (head, query, key) triples
    attn = model.encoder.layer[layer].attention
    with torch.no_grad():
        v = attn.self.value(torch.from_numpy(x[:1])).double()[0].numpy()   # (T, D)
    dh = v.shape[-1] // a.shape[1]
    for h, i, j in [(0, 1, 0), (5, 3, 7), (11, 0, 4)]:
        f = v[j, h * dh:(h + 1) * dh] @ w_o[:, h * dh:(h + 1) * dh].T   # f_h(x_j), (D,)
        expected = float(a[0, h, i, j]) * np.linalg.norm(f)
        assert abs(norms[0, h, i, j] - expected) <= 1e-5 * max(1.0, expected)


def test_recompute_needs_mask_for_padding(minilm, run):
    model, _ = minilm
    _, unmasked = ai.recompute_attention(model, run.hidden_states[0], 0, None)
    assert np.abs(unmasked[1] - run.attentions[0, 1]).max() > 1e-3   # padding leaks in


def test_errors(minilm):
    model, tokenizer = minilm
    with pytest.raises(ValueError, match="backend"):
        ai.recompute_attention(model, np.zeros((1, 3, 384)), 0, backend="jax")
    with pytest.raises(KeyError, match="layer 9"):
        ai.self_attention_params(model, 9)
    model.set_attn_implementation("sdpa")                 # sdpa returns no attention weights
    try:
        with pytest.raises(ValueError, match="eager"):
            ai.run_model(model, tokenizer, "hi")
    finally:
        model.set_attn_implementation("eager")


def test_statistics():
    one_hot = np.eye(4)                                  # every query attends to itself
    uniform = np.full((4, 4), 0.25)
    np.testing.assert_allclose(ai.attention_entropy(one_hot), 0.0)
    np.testing.assert_allclose(ai.attention_entropy(uniform), np.log(4))
    prev = np.eye(4, k=-1)
    prev[0, 0] = 1.0                                     # query i -> key i-1 (first: itself)
    np.testing.assert_allclose(ai.offset_mass(prev, -1), 1.0)
    np.testing.assert_allclose(ai.offset_mass(prev, +1), 0.0)
    tokens = ["[CLS]", "a", "b", "[SEP]"]
    stacked = np.stack([uniform, prev])                  # (2, 4, 4)
    np.testing.assert_allclose(ai.token_mass(stacked, tokens, "[CLS]"), [0.25, 0.5])
    np.testing.assert_allclose(ai.token_mass(stacked, tokens, "[SEP]"), [0.25, 0.0])
    with pytest.raises(ValueError, match="does not occur"):
        ai.token_mass(stacked, tokens, "[PAD]")
    with pytest.raises(ValueError, match="offset"):
        ai.offset_mass(prev, 0)
