"""The encoder-decoder translation model: masks, padding invariance, and it learns to reverse."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.transformer.seq2seq import Seq2SeqConfig, Seq2SeqTransformer


def small(**kw):
    return Seq2SeqConfig(**{**dict(vocab_size=13, d_model=32, encoder_layers=1, decoder_layers=1,
                                   encoder_attention_heads=4, encoder_ffn_dim=64, dropout=0.0,
                                   max_position_embeddings=16), **kw})


@pytest.mark.parametrize("pre_ln", [False, True])
def test_source_padding_is_invisible_and_decoder_is_causal(pre_ln, device):
    torch.manual_seed(0)
    model = Seq2SeqTransformer(small(normalize_before=pre_ln)).to(device).eval()
    src = torch.randint(3, 13, (1, 5), device=device)
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long, device=device)], 1)
    mask = (padded != 0).long()
    tgt = torch.randint(3, 13, (1, 6), device=device)
    with torch.no_grad():
        a = model(src, tgt)
        b = model(padded, tgt, attention_mask=mask)
        tgt2 = tgt.clone()
        tgt2[0, 4] = 3 if tgt[0, 4] != 3 else 4
        c = model(src, tgt2)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a[:, :4], c[:, :4])
    assert (a[:, 4:] - c[:, 4:]).abs().max() > 1e-4


def test_learns_to_reverse_sequences():
    torch.manual_seed(0)
    cfg = small()
    model = Seq2SeqTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)

    def batch(n):
        src = torch.randint(3, 13, (n, 5), generator=gen)
        tgt = src.flip(1)                                        # the task: reverse the sequence
        dec_in = torch.cat([torch.full((n, 1), cfg.decoder_start_token_id), tgt], 1)
        labels = torch.cat([tgt, torch.full((n, 1), cfg.eos_token_id)], 1)
        return src, dec_in, labels

    losses = []
    for _ in range(150):
        src, dec_in, labels = batch(64)
        loss = F.cross_entropy(model(src, dec_in).reshape(-1, 13), labels.reshape(-1))
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    model.eval()
    src, _, labels = batch(200)
    out = model.generate(src, max_new_tokens=6)
    accuracy = (out[:, 1:7] == labels).all(1).float().mean().item()
    assert losses[0] > 2.0 and losses[-1] < 0.3
    assert accuracy > 0.8                  # chance: 10^-5


def test_bad_seq2seq_config_raises():
    with pytest.raises(ValueError, match="d_model=30 is not divisible by encoder_attention_heads=4"):
        Seq2SeqConfig(d_model=30, encoder_attention_heads=4)
    model = Seq2SeqTransformer(small())
    with pytest.raises(ValueError, match="longer than max_position_embeddings=16"):
        model(torch.ones(1, 17, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
