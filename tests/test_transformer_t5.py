"""Our T5 against Hugging Face T5ForConditionalGeneration built from small random configs."""
from __future__ import annotations

import pytest
import torch
import transformers

from course_lib.transformer.loading import load_hf_state_dict
from course_lib.transformer.t5 import (T5Config, T5ForConditionalGeneration, greedy_generate,
                                       relative_position_bucket, shift_right)

V = 97
HF_CFG = dict(vocab_size=V, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3, num_heads=4,
              relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
              pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
VARIANTS = {"relu-tied": dict(feed_forward_proj="relu", tie_word_embeddings=True),
            "gated-gelu-unscaled": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False)}


def randomise(model: torch.nn.Module, seed: int = 0, strength: float = 0.5) -> None:
    """Every parameter random (norm gains and the bias table too), so nothing hides behind an init of 1 or 0.

    Embeddings are N(0, 1) as T5's; a weight matrix gets std strength / sqrt(fan-in). A larger strength
    makes the sub-layers dominate the residual stream, so greedy decoding does not just repeat its input.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))              # norm gains around 1
            else:
                std = 1.0 if name in ("shared.weight", "lm_head.weight") else strength / p.shape[-1] ** 0.5
                p.copy_(std * torch.randn(p.shape, generator=g))


def pair(variant="relu-tied", device="cpu", attn_implementation="eager", strength=0.5, **overrides):
    """HF reference and our copy. HF "eager" attention is the same written-out computation as ours;
    "sdpa" is PyTorch's fused kernel (float rounding in a different order)."""
    hf_cfg = transformers.T5Config(**{**HF_CFG, **VARIANTS[variant], **overrides},
                                   attn_implementation=attn_implementation)
    hf = transformers.T5ForConditionalGeneration(hf_cfg)
    randomise(hf, strength=strength)
    hf = hf.to(device).eval()
    ours = T5ForConditionalGeneration(T5Config.from_dict(hf_cfg.to_dict()))
    return hf, load_hf_state_dict(ours.to(device), hf.state_dict()).eval()


def batch(device="cpu"):
    """A padded batch: source rows of 9 and 6 tokens, target rows of 7 and 4 (-100 after the end)."""
    g = torch.Generator().manual_seed(1)
    src = torch.randint(2, V, (2, 9), generator=g)
    src_mask = torch.ones(2, 9, dtype=torch.long)
    src[1, 6:], src_mask[1, 6:] = 0, 0
    labels = torch.randint(2, V, (2, 7), generator=g)
    labels[0, -1] = labels[1, 3] = 1                                          # EOS
    labels[1, 4:] = -100
    return src.to(device), src_mask.to(device), labels.to(device)


def test_relative_position_buckets_equal_huggingface():
    rel = torch.arange(-300, 300)[None]
    for bidirectional in (True, False):
        for nb, md in ((32, 128), (8, 20)):
            ours = relative_position_bucket(rel, bidirectional, nb, md)
            ref = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket(rel, bidirectional, nb, md)
            assert torch.equal(ours, ref)
    causal = relative_position_bucket(rel, bidirectional=False)
    assert causal[rel > 0].eq(0).all() and int(causal.max()) == 31     # the decoder never sees the right
    both = relative_position_bucket(rel, bidirectional=True)
    assert both[rel > 0].min() == 17 and both[rel < 0].max() == 15    # left and right use separate halves


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_and_loss_equal_huggingface_on_a_padded_batch(variant, device):
    hf, ours = pair(variant, device)
    src, src_mask, labels = batch(device)
    with torch.no_grad():
        ref = hf(input_ids=src, attention_mask=src_mask, labels=labels)
        got = ours(src, src_mask, labels=labels)
    torch.testing.assert_close(got.logits, ref.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.loss, ref.loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.encoder_last_hidden_state, ref.encoder_last_hidden_state, atol=1e-5, rtol=1e-5)
    assert ref.logits.abs().max() > 1.0                    # the comparison is not between near-zero numbers


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_equal_huggingface_fused_attention(variant):
    """Against HF's fused-kernel ("sdpa") path: the same up to float rounding, as HF's two paths are."""
    hf_sdpa, ours = pair(variant, attn_implementation="sdpa")
    hf_eager, _ = pair(variant, attn_implementation="eager")
    src, src_mask, labels = batch()
    with torch.no_grad():
        ref = hf_sdpa(input_ids=src, attention_mask=src_mask, labels=labels).logits
        eager = hf_eager(input_ids=src, attention_mask=src_mask, labels=labels).logits
        got = ours(src, src_mask, labels=labels).logits
    hf_gap = (ref - eager).abs().max()
    assert (got - ref).abs().max() <= max(1e-5, 2 * hf_gap)


def test_padding_does_not_change_the_real_tokens():
    _, ours = pair()
    src, src_mask, labels = batch()
    with torch.no_grad():
        padded = ours(src[1:], src_mask[1:], labels=labels[1:, :4].clamp(min=0)).logits
        short = ours(src[1:, :6], labels=labels[1:, :4].clamp(min=0)).logits
    torch.testing.assert_close(padded, short, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_equal_huggingface(variant):
    hf, ours = pair(variant)
    src, src_mask, labels = batch()
    hf(input_ids=src, attention_mask=src_mask, labels=labels).loss.backward()
    ours(src, src_mask, labels=labels).loss.backward()
    hf_grads = dict(hf.named_parameters())
    checked = 0
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, hf_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)
        checked += 1
    assert checked == len(list(hf.parameters()))
    bias = ours.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.grad
    assert bias.abs().sum() > 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_greedy_generation_equals_huggingface_generate(variant, device):
    # equal encoder and decoder depths: transformers 5.23's generate() sizes its KV cache by num_layers
    hf, ours = pair(variant, device, strength=2.0, num_decoder_layers=2)
    src, src_mask, _ = batch(device)
    expected = hf.generate(input_ids=src, attention_mask=src_mask, do_sample=False, num_beams=1, max_new_tokens=12)
    got = greedy_generate(ours, src, src_mask, max_new_tokens=12)
    assert torch.equal(got, expected)
    assert len(set(got[:, 1:].flatten().tolist())) >= 4      # a varied output, not one token repeated
    never = greedy_generate(ours, src, src_mask, max_new_tokens=12, eos_token_id=None)
    assert never.shape == (2, 13)
    expected = hf.generate(input_ids=src, attention_mask=src_mask, do_sample=False, num_beams=1, max_new_tokens=12,
                           eos_token_id=None)
    assert torch.equal(never, expected)


def test_generation_stops_and_pads_after_eos():
    """Declare the token row 0 emits at step 3 the end: row 0 finishes there and is padded, row 1 goes on."""
    hf, ours = pair(strength=2.0, num_decoder_layers=2)
    src, src_mask, _ = batch()
    free = greedy_generate(ours, src, src_mask, max_new_tokens=12, eos_token_id=None)
    eos = int(free[0, 3])
    stop = int((free[0] == eos).nonzero()[0])                 # first time row 0 emits it
    assert stop >= 2 and eos not in free[1].tolist()          # a case where one row ends mid-way
    out = greedy_generate(ours, src, src_mask, max_new_tokens=12, eos_token_id=eos)
    ref = hf.generate(input_ids=src, attention_mask=src_mask, do_sample=False, num_beams=1, max_new_tokens=12,
                      eos_token_id=eos)
    assert torch.equal(out, ref)
    assert torch.equal(out[0, :stop + 1], free[0, :stop + 1]) and (out[0, stop + 1:] == 0).all()
    assert torch.equal(out[1], free[1])


def test_tied_embeddings_rescale_and_relative_bias_only_in_first_layer():
    _, ours = pair("relu-tied")
    assert ours.lm_head.weight is ours.shared.weight is ours.encoder.embed_tokens.weight
    assert hasattr(ours.encoder.block[0].layer[0].SelfAttention, "relative_attention_bias")
    assert not hasattr(ours.encoder.block[1].layer[0].SelfAttention, "relative_attention_bias")
    assert not hasattr(ours.decoder.block[0].layer[1].EncDecAttention, "relative_attention_bias")
    assert ours.config.scale_decoder_outputs
    hf, v11 = pair("gated-gelu-unscaled")       # transformers 5 ties T5's output layer always ...
    assert hf.config.tie_word_embeddings and not hf.config.scale_decoder_outputs   # ... and records the rescale
    assert not v11.config.scale_decoder_outputs and v11.lm_head.weight is v11.shared.weight
    assert hasattr(v11.decoder.block[0].layer[2].DenseReluDense, "wi_1")


def test_untied_output_layer_is_separate_and_not_rescaled():
    """The original v1.1 layout: its own lm_head, no d_model**-0.5 factor (logits = lm_head(h))."""
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=V, d_model=32, d_kv=8, d_ff=48, num_layers=1, num_heads=4,
                                                feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                                dropout_rate=0.0)).eval()
    assert model.lm_head.weight is not model.shared.weight and not model.config.scale_decoder_outputs
    src, src_mask, labels = batch()
    with torch.no_grad():
        out = model(src, src_mask, labels=labels)
        h = model.decoder(shift_right(labels, 0, 0), None, out.encoder_last_hidden_state, src_mask)
    torch.testing.assert_close(out.logits, model.lm_head(h))
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    names = {n for n, _ in model.named_parameters()}
    assert "lm_head.weight" in names


def test_shift_right_replaces_ignored_labels_with_padding():
    labels = torch.tensor([[5, 6, 1, -100]])
    assert shift_right(labels, 0, 0).tolist() == [[0, 5, 6, 1]]
    assert shift_right(torch.tensor([[5, -100, -100]]), 0, 3).tolist() == [[0, 5, 3]]


def test_our_initialisation_matches_huggingface_statistics():
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=V, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4)
    model = T5ForConditionalGeneration(cfg)
    q = model.encoder.block[0].layer[0].SelfAttention.q.weight
    assert abs(q.std().item() - (64 * 16) ** -0.5) < 0.01                  # std (d_model * d_kv)^-1/2
    assert abs(model.shared.weight.std().item() - 1.0) < 0.05
    assert model.encoder.final_layer_norm.weight.eq(1).all()


def test_bad_config_and_input_raise_clear_errors():
    with pytest.raises(ValueError, match="feed_forward_proj='swiglu' is not supported"):
        T5Config(feed_forward_proj="swiglu")
    _, ours = pair()
    src, src_mask, labels = batch()
    with pytest.raises(ValueError, match=r"ids outside \[0, 97\); the tokenizer's vocabulary does not match"):
        ours(src + 100, labels=labels)
    with pytest.raises(ValueError, match="give labels .* or decoder_input_ids"):
        ours(src)
    with pytest.raises(ValueError, match="input_ids is empty"):
        ours(src[:, :0], labels=labels)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 5\), expected \(2, 9\)"):
        ours(src, src_mask[:, :5], labels=labels)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        greedy_generate(ours, src, max_new_tokens=0)
