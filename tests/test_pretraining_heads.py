"""Our BertForPreTraining / BertForMaskedLM against Hugging Face's, same random config and weights."""
from __future__ import annotations

import pytest
import torch
import transformers

from course_lib.pretraining.heads import BertForMaskedLM, BertForPreTraining
from course_lib.pretraining.pretrain import pretraining_loss
from course_lib.transformer.bert import BertConfig
from course_lib.transformer.loading import load_hf_state_dict

HF_CFG = dict(vocab_size=211, hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
              max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter random (biases and LayerNorm gains too: zeros would hide a missing one)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():         # tied tensors are yielded once
            gain = 1.0 if "LayerNorm.weight" in name else 0.0
            p.copy_(gain + 0.2 * torch.randn(p.shape, generator=g))


def pair(hf_cls, ours_cls, device="cpu"):
    torch.manual_seed(0)
    hf = hf_cls(transformers.BertConfig(**HF_CFG, attn_implementation="eager")).to(device).eval()
    randomise(hf)
    ours = ours_cls(BertConfig.from_dict(hf.config.to_dict()))
    return hf, load_hf_state_dict(ours.to(device), hf.state_dict()).eval()


def padded_batch(device="cpu"):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 211, (3, 14), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 7:] = 1
    labels = torch.full_like(ids, -100)
    labels[0, [2, 5, 11]] = ids[0, [2, 5, 11]]
    labels[1, [1, 8]] = ids[1, [1, 8]]
    labels[2, 3] = ids[2, 3]
    nsl = torch.tensor([0, 1, 1])
    return {k: v.to(device) for k, v in dict(input_ids=ids, attention_mask=mask, token_type_ids=types,
                                             labels=labels, next_sentence_label=nsl).items()}


def test_pretraining_logits_and_loss_equal_huggingface(device):
    hf, ours = pair(transformers.BertForPreTraining, BertForPreTraining, device)
    batch = padded_batch(device)
    with torch.no_grad():
        theirs, mine = hf(**batch), ours(**batch)
    real = batch["attention_mask"].bool()
    assert (theirs.prediction_logits[real] - mine.prediction_logits[real]).abs().max() <= 1e-5
    torch.testing.assert_close(mine.seq_relationship_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=0)
    assert abs(float(mine.mlm_loss + mine.nsp_loss - theirs.loss)) <= 1e-5
    # the training loss, which runs the MLM head at the labelled positions only, is the same number
    with torch.no_grad():
        loss, n = pretraining_loss(ours, batch)
    assert n == 3 and abs(float(loss - theirs.loss)) <= 1e-5


def test_pretraining_gradients_equal_huggingface():
    hf, ours = pair(transformers.BertForPreTraining, BertForPreTraining)
    batch = padded_batch()
    hf(**batch).loss.backward()
    pretraining_loss(ours, batch)[0].backward()
    for name in ["bert.embeddings.word_embeddings.weight", "cls.predictions.transform.dense.weight",
                 "cls.predictions.transform.LayerNorm.weight", "cls.predictions.bias",
                 "cls.seq_relationship.weight", "bert.pooler.dense.weight",
                 "bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.token_type_embeddings.weight"]:
        torch.testing.assert_close(ours.get_parameter(name).grad, hf.get_parameter(name).grad,
                                   atol=1e-5, rtol=1e-4, msg=name)


def test_masked_lm_equals_huggingface(device):
    hf, ours = pair(transformers.BertForMaskedLM, BertForMaskedLM, device)
    batch = {k: v for k, v in padded_batch(device).items() if k != "next_sentence_label"}
    theirs, mine = hf(**batch), ours(**batch)
    real = batch["attention_mask"].bool()
    assert (theirs.logits[real] - mine.logits[real]).abs().max() <= 1e-5
    assert abs(float(theirs.loss - mine.loss)) <= 1e-5
    theirs.loss.backward()
    mine.loss.backward()
    torch.testing.assert_close(ours.bert.embeddings.word_embeddings.weight.grad,
                               hf.bert.embeddings.word_embeddings.weight.grad, atol=1e-5, rtol=1e-4)
    assert ours.bert.pooler is None


def test_decoder_is_tied_and_names_match_huggingface():
    hf, ours = pair(transformers.BertForPreTraining, BertForPreTraining)
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    assert set(ours.state_dict()) == set(hf.state_dict()) - {"cls.predictions.decoder.bias"}
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())
    fresh = BertForPreTraining(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32))
    assert float(fresh.cls.predictions.bias.abs().sum()) == 0.0            # HF's initialisation: zero biases
    assert abs(float(fresh.cls.predictions.transform.dense.weight.std()) - 0.02) < 0.005


def test_from_pretrained_reads_a_saved_huggingface_folder(tmp_path):
    hf, _ = pair(transformers.BertForPreTraining, BertForPreTraining)
    hf.save_pretrained(tmp_path)
    ours = BertForPreTraining.from_pretrained(tmp_path)
    batch = padded_batch()
    with torch.no_grad():
        assert abs(float(ours(**batch).loss - hf(**batch).loss)) <= 1e-5


def test_bad_input_raises_clear_errors():
    _, ours = pair(transformers.BertForPreTraining, BertForPreTraining)
    batch = padded_batch()
    bad = dict(batch, input_ids=batch["input_ids"] + 300)
    with pytest.raises(ValueError, match="tokenizer's vocabulary does not match the model's embedding table"):
        ours(**bad)
    with pytest.raises(ValueError, match="0 \\(IsNext\\) or 1 \\(NotNext\\)"):
        ours(**dict(batch, next_sentence_label=torch.tensor([0, 2, 1])))
    with pytest.raises(ValueError, match="labels have shape"):
        ours(**dict(batch, labels=batch["labels"][:, :5]))
