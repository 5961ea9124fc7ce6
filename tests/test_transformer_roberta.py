"""Our RoBERTa against Hugging Face RobertaModel / RobertaForMaskedLM built from small random configs."""
from __future__ import annotations

import pytest
import torch
import transformers

from course_lib.transformer.bert import BertModel
from course_lib.transformer.loading import load_hf_state_dict
from course_lib.transformer.roberta import (RobertaConfig, RobertaForMaskedLM, RobertaModel,
                                            create_position_ids_from_input_ids)

V, PAD = 101, 1
HF_CFG = dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=20, type_vocab_size=1, pad_token_id=PAD, bos_token_id=0, eos_token_id=2,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter random, biases and LayerNorm gains included (an init of 0 or 1 hides a missing one)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            base = 1.0 if p.dim() == 1 else 0.0
            p.copy_(base + 0.3 * torch.randn(p.shape, generator=g))


def pair(kind="mlm", device="cpu", **overrides):
    hf_cfg = transformers.RobertaConfig(**{**HF_CFG, **overrides})
    hf_cls, our_cls = ((transformers.RobertaForMaskedLM, RobertaForMaskedLM) if kind == "mlm"
                       else (transformers.RobertaModel, RobertaModel))
    hf = hf_cls(hf_cfg)
    randomise(hf)
    hf = hf.to(device).eval()
    ours = our_cls(RobertaConfig.from_dict(hf_cfg.to_dict()))
    return hf, load_hf_state_dict(ours.to(device), hf.state_dict()).eval()


def batch(device="cpu"):
    """<s> ... </s> rows of 10 and 6 tokens, the second padded with <pad> = 1."""
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, V, (2, 10), generator=g)
    ids[:, 0] = 0
    ids[0, -1] = ids[1, 5] = 2
    ids[1, 6:] = PAD
    return ids.to(device), (ids != PAD).long().to(device)


def test_position_ids_start_after_padding_idx_and_skip_pads():
    ids, _ = batch()
    pos = create_position_ids_from_input_ids(ids, PAD)
    assert pos[0].tolist() == list(range(2, 12))
    assert pos[1].tolist() == [2, 3, 4, 5, 6, 7, 1, 1, 1, 1]
    ref = transformers.models.roberta.modeling_roberta.RobertaEmbeddings.create_position_ids_from_input_ids(ids, PAD)
    assert torch.equal(pos, ref)
    left = torch.tensor([[PAD, PAD, 0, 7, 2]])                        # left padding: positions still 2, 3, 4
    assert create_position_ids_from_input_ids(left, PAD).tolist() == [[1, 1, 2, 3, 4]]


def test_encoder_equals_huggingface_on_a_padded_batch(device):
    hf, ours = pair("base", device)
    ids, mask = batch(device)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask)
        got = ours(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got.last_hidden_state[real], ref.last_hidden_state[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.pooler_output, ref.pooler_output, atol=1e-5, rtol=1e-5)
    assert isinstance(ours, BertModel)                                # the same layers as our BERT


def test_mlm_logits_and_loss_equal_huggingface(device):
    hf, ours = pair("mlm", device)
    ids, mask = batch(device)
    labels = torch.full_like(ids, -100)
    labels[0, [2, 5]] = ids[0, [2, 5]]
    labels[1, 3] = ids[1, 3]
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
        got = ours(ids, mask, labels=labels)
    real = mask.bool()
    torch.testing.assert_close(got.logits[real], ref.logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.loss, ref.loss, atol=1e-5, rtol=1e-5)
    assert ref.logits.abs().max() > 1.0


def test_mlm_gradients_equal_huggingface():
    hf, ours = pair("mlm")
    ids, mask = batch()
    labels = torch.where(torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.4, ids, -100)
    labels[~mask.bool()] = -100
    hf(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    ours(ids, mask, labels=labels).loss.backward()
    hf_params = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        ref = hf_params[name].grad
        torch.testing.assert_close(p.grad, ref, atol=1e-5, rtol=1e-4, msg=name)
    pos_grad = ours.roberta.embeddings.position_embeddings.weight.grad
    assert pos_grad[:PAD + 1].abs().max() == 0 and pos_grad[PAD + 1:12].abs().sum() > 0   # rows 0..pad unused


def test_weights_are_tied_and_no_pooler_in_the_mlm():
    _, ours = pair("mlm")
    assert ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight
    assert ours.lm_head.decoder.bias is ours.lm_head.bias
    assert ours.roberta.pooler is None
    assert not any("seq_relationship" in n for n, _ in ours.named_parameters())   # no NSP head


def test_fresh_model_has_zero_padding_rows():
    torch.manual_seed(0)
    model = RobertaForMaskedLM(RobertaConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                             intermediate_size=64, max_position_embeddings=20))
    emb = model.roberta.embeddings
    assert emb.word_embeddings.weight[PAD].abs().max() == 0 and emb.position_embeddings.weight[PAD].abs().max() == 0
    ids, mask = batch()
    out = model(ids, mask, labels=ids.masked_fill(mask == 0, -100))
    assert out.logits.shape == (2, 10, V) and torch.isfinite(out.loss)


def test_bad_config_and_input_raise_clear_errors():
    with pytest.raises(ValueError, match="max_position_embeddings=2 leaves no position"):
        RobertaConfig(max_position_embeddings=2)
    with pytest.raises(TypeError, match="RobertaModel needs a RobertaConfig"):
        from course_lib.transformer.bert import BertConfig
        RobertaModel(BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1, num_attention_heads=4))
    _, ours = pair("mlm")
    with pytest.raises(ValueError, match=r"input has 19 tokens but RoBERTa .* takes at most 18"):
        ours(torch.full((1, 19), 5))
    ids, mask = batch()
    with pytest.raises(ValueError, match=r"labels have shape \(2, 3\), expected \(2, 10\)"):
        ours(ids, mask, labels=ids[:, :3])
