"""Perturbation explanations: LIME against the lime package, exact Shapley values, KernelSHAP, deletion."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from course_lib.challenges import perturbation as P

TEXTS = ["a warm , funny and wonderfully acted film , warm and funny",
         "The plot? Dull; the acting: worse. Don't bother.",
         "one"]
WEIGHTS = {"warm": 1.2, "funny": 0.8, "wonderfully": 1.5, "dull": -2.0, "worse": -1.0, "bother": -0.5}


def toy_proba(texts):
    """A bag-of-words logistic model: P(positive) = sigmoid(sum of word weights)."""
    z = np.array([sum(WEIGHTS.get(w.lower(), 0.0) for w in t.replace(",", " ").split()) for t in texts])
    p = 1 / (1 + np.exp(-z))
    return np.stack([1 - p, p], axis=1)


def random_game(M, seed):
    """A non-additive value function on masks: pairwise interactions and a saturation."""
    rng = np.random.default_rng(seed)
    a, B = rng.normal(size=M), rng.normal(size=(M, M))

    def v(masks):
        Z = np.atleast_2d(masks).astype(float)
        return np.tanh(Z @ a + 0.5 * np.einsum("ni,ij,nj->n", Z, B, Z))
    return v


@pytest.mark.parametrize("text", TEXTS)
def test_text_features_equal_lime_indexed_string(text):
    from lime.lime_text import IndexedString
    ref = IndexedString(text, bow=True)
    ours = P.TextFeatures(text)
    assert ours.words == list(ref.inverse_vocab)
    rng = np.random.default_rng(0)
    for _ in range(5):
        drop = rng.choice(len(ours), size=rng.integers(0, len(ours) + 1), replace=False)
        mask = np.ones(len(ours))
        mask[drop] = 0
        assert ours.text_for(mask) == ref.inverse_removing(drop)
    assert ours.text_for(np.ones(len(ours))) == text


@pytest.mark.parametrize("seed", [0, 7])
def test_lime_equals_lime_text_explainer(seed):
    """Same RandomState, same masks, same kernel, same ridge: the same word weights."""
    from lime.lime_text import LimeTextExplainer
    text = TEXTS[0]
    feats = P.TextFeatures(text)
    cfg = P.LimeConfig(num_samples=400, kernel_width=25, random_state=seed)
    ours = P.explain_lime(feats, P.text_value_fn(feats, toy_proba, target=1), cfg)
    exp = LimeTextExplainer(kernel_width=25, feature_selection="none", random_state=seed).explain_instance(
        text, toy_proba, labels=(1,), num_features=len(feats), num_samples=400)
    ref = np.zeros(len(feats))
    for j, w in exp.as_map()[1]:
        ref[j] = w
    assert np.allclose(ours["weights"], ref, atol=1e-8)
    assert abs(ours["intercept"] - exp.intercept[1]) < 1e-8
    # bag of words: removing "warm" removes both occurrences (2 x 1.2 > 1.5 of "wonderfully")
    assert feats.words[int(np.argmax(ours["weights"]))] == "warm"


def test_lime_masks_shape_and_first_row():
    m = P.lime_masks(6, 50, 3)
    assert m.shape == (50, 6) and (m[0] == 1).all() and (m[1:].sum(1) < 6).all()
    assert np.array_equal(m, P.lime_masks(6, 50, np.random.RandomState(3)))


@pytest.mark.parametrize("M", [1, 3, 6])
def test_exact_shapley_additive_and_efficiency(M):
    w = np.arange(1, M + 1, dtype=float)
    phi, v0 = P.exact_shapley(lambda Z: np.atleast_2d(Z) @ w + 0.5, M)
    assert np.allclose(phi, w) and v0 == 0.5                       # an additive game pays each its weight
    game = random_game(M, 1)
    phi, v0 = P.exact_shapley(game, M)
    assert np.isclose(phi.sum(), game(np.ones(M))[0] - game(np.zeros(M))[0])     # efficiency


def test_exact_shapley_symmetric_game():
    phi, _ = P.exact_shapley(lambda Z: (np.atleast_2d(Z).sum(1) >= 2).astype(float), 4)
    assert np.allclose(phi, 0.25)                                 # symmetry: equal shares of v(N) = 1


@pytest.mark.parametrize("M, seed", [(2, 0), (5, 1), (7, 2)])
def test_kernel_shap_enumeration_equals_exact_shapley(M, seed):
    game = random_game(M, seed)
    exact, v0 = P.exact_shapley(game, M)
    ks = P.kernel_shap(game, M)
    assert ks["exact"] and np.allclose(ks["phi"], exact, atol=1e-10) and np.isclose(ks["phi0"], v0)


def test_kernel_shap_sampling_is_close_and_efficient():
    game = random_game(12, 3)
    exact, _ = P.exact_shapley(game, 12)
    est = P.kernel_shap(game, 12, nsamples=1500, random_state=0)
    assert not est["exact"]
    assert np.isclose(est["phi"].sum(), est["fx"] - est["phi0"])   # the constraint holds exactly
    assert np.abs(est["phi"] - exact).max() < 0.1 * np.abs(exact).max()


def test_shap_kernel_explainer_equals_exact_on_small_input():
    shap = pytest.importorskip("shap")
    M = 6
    game = random_game(M, 4)
    exact, _ = P.exact_shapley(game, M)
    explainer = shap.KernelExplainer(game, np.zeros((1, M)))
    ref = np.asarray(explainer.shap_values(np.ones((1, M)), nsamples=2 ** M, l1_reg=False, silent=True)).ravel()
    assert np.allclose(ref, exact, atol=1e-6)


def test_deletion_drops_beat_random_for_true_scores():
    M = 8
    w = np.array([3.0, -1, 2, 0.5, -2, 1, 0, 0.2])
    v = lambda Z: np.atleast_2d(Z) @ w                              # noqa: E731
    best = P.deletion_drops(v, M, w, ks=[0, 1, 2, 3])
    rand = P.deletion_drops(v, M, None, ks=[0, 1, 2, 3], random_orders=50)
    assert best[0] == 0 and np.allclose(best[1:], [3, 5, 6])
    assert (best[1:] > rand[1:]).all()


def test_feature_scores_from_tokens_with_minilm_offsets():
    from transformers import AutoTokenizer
    from course_lib import data
    tok = AutoTokenizer.from_pretrained(str(data.minilm_path()))
    text = "Wonderfully acted, wonderfully shot"
    enc = tok(text, return_offsets_mapping=True)
    feats = P.TextFeatures(text)                                    # Wonderfully, acted, wonderfully, shot
    scores = P.feature_scores_from_tokens(feats, enc["offset_mapping"], np.ones(len(enc["input_ids"])))
    n_tokens = [len(tok.tokenize(w)) for w in feats.words]
    assert feats.words == ["Wonderfully", "acted", "wonderfully", "shot"]
    assert np.allclose(scores, n_tokens)                            # [CLS], [SEP] and "," belong to no word


@pytest.mark.parametrize("call, exc, words", [
    (lambda: P.TextFeatures(3), TypeError, "text must be a str"),
    (lambda: P.TextFeatures("a b").text_for([1]), ValueError, "one entry per distinct word"),
    (lambda: P.lime_masks(0, 10), ValueError, "at least one word"),
    (lambda: P.lime_masks(3, 1), ValueError, "num_samples must be an int >= 2"),
    (lambda: P.lime_weights(np.ones((3, 2)), np.ones(2)), ValueError, "masks must be"),
    (lambda: P.exact_shapley(lambda Z: Z.sum(1), 25), ValueError, "enumerate at most"),
    (lambda: P.kernel_shap(lambda Z: np.atleast_2d(Z).sum(1), 30, nsamples=1), ValueError, "nsamples must be"),
    (lambda: P.deletion_drops(lambda Z: Z.sum(1), 3, None, [1]), ValueError, "random_orders >= 1"),
    (lambda: P.deletion_drops(lambda Z: Z.sum(1), 3, np.ones(3), [4]), ValueError, "every k must be in 0..3"),
    (lambda: P.explain_lime(P.TextFeatures("!!"), lambda Z: Z.sum(1)), ValueError, "no words to explain"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_all_subsets_helper_sanity():
    assert len(list(itertools.product([0, 1], repeat=3))) == 8
