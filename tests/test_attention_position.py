"""Positional encodings: sinusoidal, learned, rotary."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.attention import position as pos
from course_lib.attention import torch_attention as tta


def test_sinusoidal_matches_the_formula_and_torch():
    pe = pos.sinusoidal_encoding(50, 16)
    p, i = 7, 3
    assert pe[p, 2 * i] == pytest.approx(np.sin(p / 10000 ** (2 * i / 16)))
    assert pe[p, 2 * i + 1] == pytest.approx(np.cos(p / 10000 ** (2 * i / 16)))
    np.testing.assert_allclose(pos.sinusoidal_encoding_torch(50, 16, dtype=torch.float64).numpy(), pe,
                               atol=1e-12)


def test_sinusoidal_shift_is_a_rotation():
    pe = pos.sinusoidal_encoding(40, 8)
    k = 5
    for i in range(4):
        w = 10000 ** (-2 * i / 8)
        rot = np.array([[np.cos(k * w), -np.sin(k * w)], [np.sin(k * w), np.cos(k * w)]])
        pair = pe[:, 2 * i:2 * i + 2]          # (sin, cos)
        np.testing.assert_allclose(pair[:-k] @ rot, pair[k:], atol=1e-12)


def test_rope_depends_only_on_relative_position(rng):
    d = 16
    q, k = rng.normal(size=d), rng.normal(size=d)
    cos, sin = pos.rope_cos_sin(200, d)
    rq = pos.apply_rope(np.tile(q, (200, 1)), cos, sin)
    rk = pos.apply_rope(np.tile(k, (200, 1)), cos, sin)
    for m, n in [(3, 1), (10, 8), (150, 148)]:
        assert rq[m] @ rk[n] == pytest.approx(rq[2] @ rk[0], abs=1e-10)
    np.testing.assert_allclose(np.linalg.norm(rq, axis=1), np.linalg.norm(q), rtol=1e-12)
    np.testing.assert_allclose(rq[0], q, atol=1e-15)           # position 0: identity


def test_rope_numpy_equals_torch(rng, device):
    x = rng.normal(size=(2, 3, 10, 8))
    cos, sin = pos.rope_cos_sin(10, 8)
    tc, ts = pos.rope_cos_sin_torch(10, 8, device=device, dtype=torch.float64)
    ours = pos.apply_rope(torch.tensor(x, device=device), tc, ts).cpu().numpy()
    np.testing.assert_allclose(ours, pos.apply_rope(x, cos, sin), atol=1e-6)


def test_rope_shape_error():
    cos, sin = pos.rope_cos_sin(10, 8)
    with pytest.raises(ValueError, match=r"\(12, 8\).*\(10, 8\)"):
        pos.apply_rope(np.zeros((12, 8)), cos, sin)
    with pytest.raises(ValueError, match="even"):
        pos.rope_cos_sin(10, 7)


def test_attention_is_permutation_equivariant_and_positions_break_it():
    torch.manual_seed(0)
    mha = tta.MultiHeadAttention(16, 4)
    x = torch.randn(1, 8, 16)
    perm = torch.randperm(8)
    out, _ = mha(x)
    out_perm, _ = mha(x[:, perm])
    assert torch.allclose(out[:, perm], out_perm, atol=1e-6)
    pe = pos.sinusoidal_encoding_torch(8, 16)
    out, _ = mha(x + pe)
    out_perm, _ = mha(x[:, perm] + pe)
    assert not torch.allclose(out[:, perm], out_perm, atol=1e-3)


def test_learned_positions():
    emb = pos.LearnedPositionalEmbedding(max_positions=6, dim=4)
    x = torch.zeros(2, 5, 4)
    assert torch.equal(emb(x)[1], emb.weight[:5].detach())
    with pytest.raises(ValueError, match="exceeds the 6 learned positions"):
        emb(torch.zeros(1, 7, 4))
