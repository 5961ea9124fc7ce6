"""Class imbalance: focal loss against cross-entropy and autograd, PR-AUC and calibration against
scikit-learn, resampling and weights, threshold tuning, and the SMS spam splits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.challenges import imbalance as im


def _logits(device="cpu", N=16, K=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return (3 * torch.randn(N, K, generator=g, dtype=dtype)).to(device), torch.randint(0, K, (N,), generator=g).to(device)


def test_focal_loss_with_gamma_zero_is_cross_entropy(device):
    logits, y = _logits(device)
    torch.testing.assert_close(im.focal_loss(logits, y, gamma=0.0), F.cross_entropy(logits, y))
    torch.testing.assert_close(im.focal_loss(logits, y, gamma=0, reduction="sum"),
                               F.cross_entropy(logits, y, reduction="sum"))
    torch.testing.assert_close(im.focal_loss(logits, y, gamma=0, reduction="none"),
                               F.cross_entropy(logits, y, reduction="none"))


def test_focal_loss_with_gamma_zero_and_alpha_is_weighted_cross_entropy(device):
    logits, y = _logits(device)
    alpha = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64, device=device)
    torch.testing.assert_close(im.focal_loss(logits, y, gamma=0, alpha=alpha, reduction="sum"),
                               F.cross_entropy(logits, y, weight=alpha, reduction="sum"))
    # "mean" divides by N, not by sum(alpha_y) as F.cross_entropy(weight=...) does
    torch.testing.assert_close(im.focal_loss(logits, y, gamma=0, alpha=alpha),
                               F.cross_entropy(logits, y, weight=alpha, reduction="none").mean())


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_focal_loss_value_and_gradient_match_a_naive_formula(gamma):
    logits, y = _logits()
    alpha = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = im.focal_loss(a, y, gamma=gamma, alpha=alpha)
    p = torch.softmax(b, -1)[torch.arange(len(y)), y]
    naive = (-alpha[y] * (1 - p) ** gamma * torch.log(p)).mean()
    ours.backward()
    naive.backward()
    torch.testing.assert_close(ours, naive)
    torch.testing.assert_close(a.grad, b.grad)
    assert torch.autograd.gradcheck(lambda z: im.focal_loss(z, y, gamma=gamma, alpha=alpha),
                                    (logits.clone().requires_grad_(True),))


def test_focal_loss_closed_form_gradient_binary():
    # two classes, gamma = 2: d FL / d z_y = -(1-p)^g [ (1-p) - g p log p ]  (Lin et al. 2017, appendix)
    z = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.4, 0.9]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 1])
    g = 2.0
    im.focal_loss(z, y, gamma=g, reduction="sum").backward()
    p = torch.softmax(z.detach(), -1)[torch.arange(3), y]
    dz_y = -(1 - p) ** g * ((1 - p) - g * p * torch.log(p))
    torch.testing.assert_close(z.grad[torch.arange(3), y], dz_y)
    torch.testing.assert_close(z.grad.sum(-1), torch.zeros(3, dtype=torch.float64))


def test_focal_loss_down_weights_easy_examples():
    logits, y = _logits()
    ce = F.cross_entropy(logits, y, reduction="none")
    fl = im.focal_loss(logits, y, gamma=2.0, reduction="none")
    assert (fl <= ce + 1e-12).all()
    p = torch.exp(-ce)
    easy, hard = p > 0.9, p < 0.3
    assert easy.any() and hard.any()
    assert (fl[easy] / ce[easy]).max() < (fl[hard] / ce[hard]).min()


@pytest.mark.parametrize("kwargs, words", [
    (dict(gamma=-1.0), "gamma must be"), (dict(reduction="avg"), "reduction must be"),
    (dict(alpha=[1.0, 2.0]), "one weight per class")])
def test_focal_loss_bad_arguments(kwargs, words):
    logits, y = _logits()
    with pytest.raises(ValueError, match=words):
        im.focal_loss(logits, y, **kwargs)


def test_focal_loss_bad_labels():
    logits, y = _logits()
    with pytest.raises(ValueError, match="lie in 0..2"):
        im.focal_loss(logits, y + 3)
    with pytest.raises(ValueError, match="int tensor of shape"):
        im.focal_loss(logits, y.double())
    with pytest.raises(ValueError, match=r"\(N, K\) tensor"):
        im.focal_loss(logits[0], y)


def test_average_precision_equals_sklearn_with_ties(rng):
    from sklearn.metrics import average_precision_score
    for trial in range(5):
        y = (rng.random(300) < 0.1).astype(int)
        y[0] = 1
        s = np.round(rng.random(300) + 0.3 * y, 1 if trial % 2 else 6)      # rounding makes many ties
        assert im.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_average_precision_of_random_scores_is_the_positive_rate(rng):
    y = (rng.random(20000) < 0.13).astype(int)
    assert im.average_precision(y, rng.random(20000)) == pytest.approx(y.mean(), abs=0.01)
    assert im.average_precision(y, y + 0.0) == 1.0


def test_calibration_curve_equals_sklearn(rng):
    from sklearn.calibration import calibration_curve
    p = rng.random(2000)
    y = (rng.random(2000) < p ** 2).astype(int)
    ours = im.calibration_curve(y, p, n_bins=10)
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(ours["fraction_positive"], frac)
    np.testing.assert_allclose(ours["mean_predicted"], mean)
    assert ours["count"].sum() == 2000
    assert im.expected_calibration_error(y, p) > 0.1 > im.expected_calibration_error(y, p ** 2) + 0.05


def test_balanced_class_weights_equal_sklearn():
    from sklearn.utils.class_weight import compute_class_weight
    y = np.array([0] * 87 + [1] * 13)
    np.testing.assert_allclose(im.balanced_class_weights(y), compute_class_weight("balanced", classes=np.array([0, 1]), y=y))
    with pytest.raises(ValueError, match="no example"):
        im.balanced_class_weights(np.zeros(5, int), num_classes=2)


def test_resampling_balances_the_classes():
    y = np.array([0] * 87 + [1] * 13)
    over, under = im.random_oversample(y, 0), im.random_undersample(y, 0)
    assert np.bincount(y[over]).tolist() == [87, 87] and set(range(100)) <= set(over.tolist())
    assert np.bincount(y[under]).tolist() == [13, 13] and len(set(under.tolist())) == 26
    with pytest.raises(ValueError, match="1-D array of class ids"):
        im.random_oversample(np.array([0.5, 1.0]))


def test_tune_threshold_maximises_validation_f1(rng):
    from sklearn.metrics import f1_score
    y = (rng.random(500) < 0.1).astype(int)
    p = np.clip(0.25 * y + 0.2 * rng.random(500), 0, 1)
    t = im.tune_threshold(y, p)
    best = max(f1_score(y, p >= g) for g in np.round(np.arange(0.01, 1, 0.01), 2))
    assert f1_score(y, p >= t) == pytest.approx(best)
    assert t < 0.5


def test_binary_metrics_all_negative_baseline():
    y = np.array([0] * 87 + [1] * 13)
    m = im.binary_metrics(y, np.zeros(100))
    assert m["accuracy"] == pytest.approx(0.87) and m["recall"] == 0 and m["f1"] == 0
    assert m["macro_f1"] == pytest.approx(0.5 * 2 * 0.87 / 1.87)
    assert m["pr_auc"] == pytest.approx(0.13)
    with pytest.raises(ValueError, match="no positive example"):
        im.binary_metrics(np.zeros(4, int), np.zeros(4))


def test_class_weights_raise_minority_recall_on_a_synthetic_task(rng, one_torch_thread):
    n = 600
    y = (rng.random(n) < 0.05).astype(int)
    X = rng.normal(size=(n, 5)) + 1.2 * y[:, None]
    cfg = im.LinearConfig(epochs=150, lr=0.05)
    plain = im.run_method("plain", X[:300], y[:300], X[300:450], y[300:450], X[450:], y[450:], cfg)
    weighted = im.run_method("class_weight", X[:300], y[:300], X[300:450], y[300:450], X[450:], y[450:], cfg)
    assert weighted["recall"] > plain["recall"]
    with pytest.raises(ValueError, match="unknown method"):
        im.run_method("smote", X, y, X, y, X, y)


def test_spam_splits_rates():
    full = im.spam_splits()
    n = sum(len(v[1]) for v in full.values())
    rate = sum(v[1].sum() for v in full.values()) / n
    assert 0.12 < rate < 0.14 and len(full["test"][1]) == pytest.approx(0.2 * n, abs=2)
    assert 1 - full["test"][1].mean() == pytest.approx(0.87, abs=0.01)       # the all-ham accuracy
    hard = im.spam_splits(spam_fraction=0.02)
    m = sum(len(v[1]) for v in hard.values())
    assert sum(v[1].sum() for v in hard.values()) / m == pytest.approx(0.02, abs=0.001)
    assert not set(full["train"][0][:50]) & set(full["test"][0])
    with pytest.raises(ValueError, match="spam_fraction must be in"):
        im.spam_splits(spam_fraction=0.5)


def test_benchmark_imbalance_run_smoke(one_torch_thread):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "challenges.py"
    spec = importlib.util.spec_from_file_location("bench_challenges", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.imbalance_run(0.02, 0, im.LinearConfig(epochs=5))
    assert set(out) == {"all_ham", "sizes", *im.METHODS}
    assert out["all_ham"]["accuracy"] > 0.97 and out["sizes"]["test"][1] > 10
