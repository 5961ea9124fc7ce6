"""Decoding: filters against Hugging Face's warpers, KV cache = no cache, beam search against HF."""
from __future__ import annotations

import itertools

import pytest
import torch
import transformers
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from course_lib.transformer import decoding
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel
from course_lib.transformer.loading import load_hf_state_dict


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(vocab_size=101, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0, pad_token_id=0)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    ours = load_hf_state_dict(GPT2LMHeadModel(GPT2Config.from_dict(hf_cfg.to_dict())), hf.state_dict())
    return hf, ours.eval()


@pytest.mark.parametrize("k", [1, 5, 40])
def test_top_k_filter_equals_huggingface(k):
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(k))
    expected = TopKLogitsWarper(k)(None, logits.clone())
    assert torch.equal(decoding.top_k_filter(logits, k), expected)
    assert (decoding.top_k_filter(logits, k) > float("-inf")).sum(-1).eq(k).all()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1.0])
def test_top_p_filter_equals_huggingface(p):
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(int(p * 10))) * 2
    got = decoding.top_p_filter(logits, p)
    assert torch.equal(got, TopPLogitsWarper(p)(None, logits.clone()))
    kept = got > float("-inf")
    probs = logits.softmax(-1)
    assert ((probs * kept).sum(-1) >= p - 1e-6).all()          # the nucleus holds at least mass p


def test_sampling_frequencies_follow_the_filtered_distribution():
    logits = torch.tensor([2.0, 1.5, 1.0, 0.0, -1.0])
    gen = torch.Generator().manual_seed(0)
    n = 40000
    ids = decoding.sample_next_token(logits.expand(n, 5), do_sample=True, temperature=0.7, top_k=3, generator=gen)
    freq = torch.bincount(ids, minlength=5).float() / n
    expected = torch.zeros(5)
    expected[:3] = (logits[:3] / 0.7).softmax(-1)
    assert freq[3:].sum() == 0                                    # outside the top 3: never
    assert (freq - expected).abs().max() < 0.01                   # 4 standard errors at n = 40000
    greedy = decoding.sample_next_token(logits.expand(3, 5))
    assert greedy.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="temperature must be > 0"):
        decoding.sample_next_token(logits[None], do_sample=True, temperature=0.0)


def test_kv_cache_gives_the_same_tokens_and_logits(models, device):
    _, ours = models
    ours = ours.to(device)
    ids = torch.randint(1, 101, (3, 7), generator=torch.Generator().manual_seed(1)).to(device)
    a, la = decoding.generate(ours, ids, 24, use_cache=True, return_logits=True)
    b, lb = decoding.generate(ours, ids, 24, use_cache=False, return_logits=True)
    assert torch.equal(a, b) and la.shape == (3, 24, 101)
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-5)
    # sampling with the same random stream: same tokens too
    s1 = decoding.generate(ours, ids, 16, do_sample=True, temperature=1.3, top_p=0.9, use_cache=True,
                           generator=torch.Generator(device).manual_seed(5))
    s2 = decoding.generate(ours, ids, 16, do_sample=True, temperature=1.3, top_p=0.9, use_cache=False,
                           generator=torch.Generator(device).manual_seed(5))
    assert torch.equal(s1, s2) and not torch.equal(s1, a[:, :23])
    ours.cpu()


def test_eos_stops_rows_and_pads_them(models):
    _, ours = models
    ids = torch.randint(1, 101, (2, 5), generator=torch.Generator().manual_seed(2))
    free = decoding.generate(ours, ids, 12)
    eos = int(free[0, 8])                                      # row 0 emits it at step 4
    out = decoding.generate(ours, ids, 12, eos_token_id=eos)
    first = (out[0, 5:] == eos).nonzero()[0].item()
    assert (out[0, 5 + first:] == eos).all() and torch.equal(out[0, :5 + first], free[0, :5 + first])


@pytest.mark.parametrize("num_beams,length_penalty,eos_step", [(3, 1.0, None), (4, 1.0, 3), (4, -1.0, 2),
                                                                (4, 2.0, 4)])
def test_beam_search_equals_huggingface(models, num_beams, length_penalty, eos_step):
    hf, ours = models
    ids = torch.randint(1, 101, (1, 8), generator=torch.Generator().manual_seed(num_beams + (eos_step or 0)))
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=8, num_beams=num_beams, do_sample=False,
              pad_token_id=0, length_penalty=length_penalty)
    eos = None
    if eos_step is not None:        # an end token that the beams actually meet
        eos = int(hf.generate(ids, eos_token_id=None, **kw)[0, 8 + eos_step])
    expected = hf.generate(ids, eos_token_id=eos, **kw)
    for use_cache in (True, False):
        got, score = decoding.beam_search(ours, ids, num_beams, 8, length_penalty, eos, use_cache)
        assert torch.equal(got, expected[:, :got.shape[1]])
        assert (expected[:, got.shape[1]:] == 0).all()          # HF pads the rest
    if length_penalty < 0:                                      # favours short outputs: EOS ended it early
        assert got.shape[1] < 16 and got[0, -1] == eos


def test_beam_search_finds_the_exact_best_sequence_when_wide_enough():
    torch.manual_seed(3)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=5, n_positions=16, n_embd=16, n_layer=1, n_head=2)).eval()
    ids = torch.tensor([[1, 2]])
    best, best_lp = None, -float("inf")
    with torch.no_grad():
        for tail in itertools.product(range(5), repeat=3):          # all 125 continuations
            seq = torch.tensor([[1, 2, *tail]])
            lp = model(seq)[0, 1:-1].log_softmax(-1).gather(-1, seq[0, 2:, None]).sum().item()
            if lp > best_lp:
                best, best_lp = seq, lp
    got, score = decoding.beam_search(model, ids, num_beams=25, max_new_tokens=3, length_penalty=0.0)
    assert torch.equal(got, best) and abs(score - best_lp) < 1e-4
    one, _ = decoding.beam_search(model, ids, num_beams=1, max_new_tokens=3)
    assert torch.equal(one, decoding.generate(model, ids, 3))      # one beam = greedy
