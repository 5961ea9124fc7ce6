"""Bad input to chapter 4's models, decoding, checkpoints, data helpers and training: a clear error at our API.

Every case asserts the exception type and the words that tell the user what to change; valid but
degenerate input (zero new tokens, an empty batch, a fully padded row) has its documented result.
"""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

from course_lib.data import ChecksumError
from course_lib.transformer import checkpoint, decoding, lm_data, training
from course_lib.transformer.bert import BertConfig, BertModel
from course_lib.transformer.blocks import KVCache, attend, check_values
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel
from course_lib.transformer.llama import LlamaConfig, LlamaForCausalLM
from course_lib.transformer.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.transformer.training import TrainConfig

V = 23


def gpt(**kw):
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(**{**dict(vocab_size=V, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0), **kw})).eval()


def llama(**kw):
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**dict(vocab_size=V, hidden_size=16, intermediate_size=32,
                                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                  max_position_embeddings=32, pad_token_id=0), **kw})).eval()


def bert(**kw):
    torch.manual_seed(0)
    return BertModel(BertConfig(**{**dict(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=32, max_position_embeddings=16), **kw})).eval()


def seq2seq(**kw):
    torch.manual_seed(0)
    return Seq2SeqTransformer(Seq2SeqConfig(**{**dict(vocab_size=V, d_model=16, encoder_layers=1, decoder_layers=1,
                                                      encoder_attention_heads=2, encoder_ffn_dim=32, dropout=0.0,
                                                      max_position_embeddings=16), **kw})).eval()


CAUSAL = {"gpt2": gpt, "llama": llama}
ENCODERS = {"bert": lambda m, ids, **kw: m(ids, **kw),
            "seq2seq": lambda m, ids, **kw: m(ids, torch.ones(len(ids), 2, dtype=torch.long), **kw)}
ALL = {**{k: (f, lambda m, ids, **kw: m(ids, **kw)) for k, f in CAUSAL.items()},
       "bert": (bert, ENCODERS["bert"]), "seq2seq": (seq2seq, ENCODERS["seq2seq"])}


# ----------------------------------------------------------------------------- model inputs

@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("bad", [V, V + 100, -1, -100], ids=["V", "V+100", "-1", "-100"])
def test_ids_outside_the_vocabulary(name, bad):
    make, call = ALL[name]
    ids = torch.randint(1, V, (2, 5))
    ids[1, 3] = bad
    with pytest.raises(ValueError, match=rf"input_ids holds {bad} at position \(1, 3\), outside \[0, vocab_size={V}\)"):
        call(make(), ids)


@pytest.mark.parametrize("name", list(ALL))
def test_one_dimensional_ids_ask_for_a_batch(name):
    make, call = ALL[name]
    with pytest.raises(ValueError, match=r"must have 2 dimensions \(B, T\), got shape \(5,\); pass a batch of "
                                         r"shape \(B, T\), e\.g\. input_ids\[None\]"):
        call(make(), torch.arange(5))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 5\)"):
        call(make(), torch.zeros(1, 2, 5, dtype=torch.long))


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bool, torch.uint8, torch.int16])
def test_non_index_dtypes(name, dtype):
    make, call = ALL[name]
    with pytest.raises(TypeError, match=rf"integer indices \(dtype torch.long or torch.int32.*got {dtype}; "
                                        r"convert it with input_ids.long\(\)"):
        call(make(), torch.ones(2, 5).to(dtype))


@pytest.mark.parametrize("name", list(ALL))
def test_lists_and_empty_sequences(name):
    make, call = ALL[name]
    with pytest.raises(TypeError, match="must be a torch.Tensor of shape \\(B, T\\), got list"):
        call(make(), [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"has no tokens \(shape \(2, 0\)\); pass at least one token"):
        call(make(), torch.zeros(2, 0, dtype=torch.long))


def test_int32_ids_and_an_empty_batch_work():
    model = gpt()
    ids = torch.randint(0, V, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(model(ids.int()), model(ids))
        assert model(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 6, V)          # empty batch: empty logits
        assert llama()(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 6, V)


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert", "seq2seq"])
def test_attention_masks_of_the_wrong_shape_kind_or_values(name):
    make, call = ALL[name]
    model, ids = make(), torch.randint(1, V, (2, 5))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\) but must be \(B, T.* = \(2, 5\)"):
        call(model, ids, attention_mask=torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 1, 1, 5\)"):
        call(model, ids, attention_mask=torch.ones(2, 1, 1, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="attention_mask must be a torch.Tensor of 1 .* and 0"):
        call(model, ids, attention_mask=[[1] * 5] * 2)
    for bad in (torch.full((2, 5), 2), torch.full((2, 5), float("nan")), -torch.ones(2, 5, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"attention_mask must hold only 0 \(padding\) and 1 \(real token\)"):
            call(model, ids, attention_mask=bad)
    with torch.no_grad():                               # bool, int and float 0/1 masks are the same mask
        outs = [call(model, ids, attention_mask=m) for m in
                (torch.ones(2, 5, dtype=torch.bool), torch.ones(2, 5, dtype=torch.long), torch.ones(2, 5))]
    first = outs[0] if isinstance(outs[0], torch.Tensor) else outs[0].last_hidden_state
    last = outs[-1] if isinstance(outs[-1], torch.Tensor) else outs[-1].last_hidden_state
    torch.testing.assert_close(first, last)


@pytest.mark.parametrize("name", list(CAUSAL))
def test_position_ids_and_cache_mismatches(name):
    model, ids = CAUSAL[name](), torch.randint(1, V, (2, 5))
    with pytest.raises(ValueError, match=r"position_ids has shape \(2, 4\), expected \(2, 5\) \(or \(1, 5\)\)"):
        model(ids, position_ids=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"position_ids holds 32 at position \(0, 4\), outside \[0, "):
        model(ids, position_ids=torch.arange(28, 33)[None])
    with pytest.raises(TypeError, match="position_ids must hold integer indices"):
        model(ids, position_ids=torch.arange(5.0)[None])
    cache = model.new_cache(3, 16)
    with pytest.raises(ValueError, match="the KV cache holds 3 sequences but the input has 2; create it with "
                                         r"model.new_cache\(batch_size=input_ids.shape\[0\]"):
        model(ids, cache)
    cache = model.new_cache(2, 16)
    model(ids, cache)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 1\) but must be "
                                         r"\(B, T_past \+ T\) = \(2, 6\)"):
        model(ids[:, :1], cache, attention_mask=torch.ones(2, 1))
    with pytest.raises(TypeError, match="KVCache max_length must be an integer"):
        model.new_cache(2, 4.5)
    with pytest.raises(ValueError, match="KVCache max_length must be >= 1, got 0"):
        model.new_cache(2, 0)


def test_token_type_and_position_ids_of_bert():
    model, ids = bert(), torch.randint(1, V, (2, 5))
    with pytest.raises(ValueError, match=r"token_type_ids holds 2 at position \(0, 0\), "
                                         r"outside \[0, type_vocab_size=2\)"):
        model(ids, token_type_ids=torch.full((2, 5), 2))
    with pytest.raises(ValueError, match=r"token_type_ids has shape \(2, 3\), expected \(2, 5\)"):
        model(ids, token_type_ids=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"position_ids holds -1 .* outside \[0, max_position_embeddings=16\)"):
        model(ids, position_ids=torch.full((1, 5), -1))


def test_seq2seq_decoder_ids_and_memory():
    model = seq2seq()
    src = torch.randint(3, V, (2, 5))
    with pytest.raises(ValueError, match=r"decoder_input_ids holds 99 .* outside \[0, vocab_size=23\)"):
        model(src, torch.full((2, 3), 99))
    with pytest.raises(ValueError, match=r"decoder_input_ids must have 2 dimensions"):
        model(src, torch.ones(3, dtype=torch.long))
    memory, mask = model.encode(src)
    with pytest.raises(ValueError, match=r"memory must be the encoder output \(B=3, T_src, D\)"):
        model.decode(torch.ones(3, 2, dtype=torch.long), memory)


# ----------------------------------------------------------------------------- configs

@pytest.mark.parametrize("cls,field", [(GPT2Config, "n_head"), (GPT2Config, "n_layer"), (GPT2Config, "vocab_size"),
                                       (GPT2Config, "n_positions"), (LlamaConfig, "num_attention_heads"),
                                       (LlamaConfig, "num_key_value_heads"), (BertConfig, "num_attention_heads"),
                                       (BertConfig, "type_vocab_size"), (Seq2SeqConfig, "encoder_attention_heads"),
                                       (Seq2SeqConfig, "d_model")])
@pytest.mark.parametrize("value", [0, -2])
def test_sizes_must_be_positive(cls, field, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}.{field} must be >= 1, got {value}"):
        cls(**{field: value})


@pytest.mark.parametrize("cls,field", [(GPT2Config, "n_embd"), (LlamaConfig, "hidden_size"),
                                       (BertConfig, "intermediate_size"), (Seq2SeqConfig, "encoder_layers")])
def test_sizes_must_be_integers(cls, field):
    with pytest.raises(TypeError, match=rf"{cls.__name__}.{field} must be an integer, got 64.0"):
        cls(**{field: 64.0})


@pytest.mark.parametrize("cls,field", [(GPT2Config, "attn_pdrop"), (GPT2Config, "resid_pdrop"),
                                       (BertConfig, "hidden_dropout_prob"), (LlamaConfig, "attention_dropout"),
                                       (Seq2SeqConfig, "dropout")])
@pytest.mark.parametrize("value", [1.0, -0.1, 1.5])
def test_dropout_probabilities_in_unit_interval(cls, field, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}.{field} is a dropout probability and must be in \[0, 1\)"):
        cls(**{field: value})
    with pytest.raises(ValueError, match=rf"{cls.__name__}.{field} must be a finite number, got nan"):
        cls(**{field: float("nan")})


@pytest.mark.parametrize("cls,field", [(GPT2Config, "layer_norm_epsilon"), (BertConfig, "layer_norm_eps"),
                                       (LlamaConfig, "rms_norm_eps"), (LlamaConfig, "rope_theta")])
def test_epsilons_and_rope_base_positive(cls, field):
    for bad in (0.0, -1e-5):
        with pytest.raises(ValueError, match=rf"{cls.__name__}.{field} must be > 0"):
            cls(**{field: bad})


def test_divisibility_activation_and_implementation():
    with pytest.raises(ValueError, match="n_embd=64 is not divisible by n_head=5"):
        GPT2Config(n_embd=64, n_head=5)
    with pytest.raises(ValueError, match="head_dim=3 must be even: RoPE rotates pairs"):
        LlamaConfig(hidden_size=24, num_attention_heads=8, num_key_value_heads=2)
    with pytest.raises(ValueError, match="unknown activation 'gelu2'"):
        GPT2Config(activation_function="gelu2")
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        Seq2SeqConfig(activation_function="tanh")
    for cls in (GPT2Config, LlamaConfig, BertConfig):
        with pytest.raises(ValueError, match="attn_implementation must be 'sdpa' or 'eager', got 'flash'"):
            cls(attn_implementation="flash")
    with pytest.raises(ValueError, match=r"pad_token_id=99 must be in \[0, vocab_size=23\)"):
        LlamaConfig(vocab_size=23, hidden_size=16, num_attention_heads=4, num_key_value_heads=2, pad_token_id=99)
    with pytest.raises(ValueError, match="Seq2SeqConfig.eos_token_id=30 must be < vocab_size=23"):
        Seq2SeqConfig(vocab_size=23, eos_token_id=30)
    with pytest.raises(ValueError, match="output_attentions=True needs GPT2Config\\(attn_implementation='eager'\\)"):
        gpt()(torch.ones(1, 3, dtype=torch.long), output_attentions=True)


# ----------------------------------------------------------------------------- decoding

@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_lengths(use_cache):
    model, ids = gpt(), torch.randint(1, V, (2, 4))
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0, got -1"):
        decoding.generate(model, ids, -1, use_cache=use_cache)
    with pytest.raises(TypeError, match="max_new_tokens must be an integer, got 2.5"):
        decoding.generate(model, ids, 2.5, use_cache=use_cache)
    out, logits = decoding.generate(model, ids, 0, use_cache=use_cache, return_logits=True)
    assert torch.equal(out, ids) and logits.shape == (2, 0, V)          # 0 new tokens: the prompt itself
    with pytest.raises(ValueError, match="exceeds the model's context of 32 tokens"):
        decoding.generate(model, ids, 29, use_cache=use_cache)


@pytest.mark.parametrize("do_sample", [True, False])
def test_sampling_arguments_are_validated_even_when_greedy(do_sample):
    model, ids = gpt(), torch.randint(1, V, (2, 4))
    cases = [(dict(temperature=-1.0), ValueError, "temperature must be > 0"),
             (dict(temperature=0.0), ValueError, "temperature must be > 0"),
             (dict(temperature=float("nan")), ValueError, "temperature must be a finite number"),
             (dict(top_k=0), ValueError, "top_k must be >= 1"),
             (dict(top_k=2.5), TypeError, "top_k must be an integer"),
             (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
             (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\]"),
             (dict(generator=0), TypeError, "generator must be a torch.Generator or None"),
             (dict(eos_token_id=V), ValueError, r"eos_token_id=23 is not in the model's vocabulary \[0, 23\)"),
             (dict(eos_token_id=-1), ValueError, "eos_token_id must be >= 0")]
    for kw, exc, match in cases:
        with pytest.raises(exc, match=match):
            decoding.generate(model, ids, 3, do_sample=do_sample, **kw)
        if "eos_token_id" not in kw:
            with pytest.raises(exc, match=match):
                decoding.sample_next_token(torch.randn(2, V), do_sample=do_sample, **kw)
    with pytest.raises(TypeError, match="do_sample must be True or False, got 'yes'"):
        decoding.generate(model, ids, 3, do_sample="yes")


def test_filters_and_sample_next_token_reject_bad_logits():
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        decoding.top_k_filter(torch.ones(2, 5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="vocabulary axis of size V >= 1"):
        decoding.top_p_filter(torch.ones(2, 0), 0.5)
    with pytest.raises(ValueError, match="min_tokens_to_keep must be >= 1"):
        decoding.top_p_filter(torch.ones(2, 5), 0.5, min_tokens_to_keep=0)
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        decoding.sample_next_token([0.1, 0.9])


def test_generate_with_a_mask_needs_left_padding_and_a_real_token():
    model, ids = gpt(), torch.randint(1, V, (2, 4))
    right = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(ValueError, match="a prompt ends with padding: pad prompts on the left"):
        decoding.generate(model, ids, 2, attention_mask=right)
    with pytest.raises(ValueError, match="a row of attention_mask is all padding"):
        decoding.generate(model, ids, 2, attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 3\) but must be \(B, T\) like input_ids"):
        decoding.generate(model, ids, 2, attention_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="attention_mask must hold only 0"):
        decoding.generate(model, ids, 2, attention_mask=torch.full((2, 4), 3))
    full = torch.ones(2, 4, dtype=torch.long)                   # an all-ones mask changes nothing
    assert torch.equal(decoding.generate(model, ids, 5, attention_mask=full), decoding.generate(model, ids, 5))


def test_left_padding_does_not_change_a_prompts_continuation():
    """A prompt's greedy tokens are the same alone and left-padded in a batch (cache or not)."""
    for model in (gpt(), llama()):
        short = torch.randint(1, V, (1, 3))
        long = torch.randint(1, V, (1, 6))
        batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
        mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1] * 6])
        for use_cache in (True, False):
            out = decoding.generate(model, batch, 6, attention_mask=mask, use_cache=use_cache)
            assert torch.equal(out[0, 3:], decoding.generate(model, short, 6)[0])
            assert torch.equal(out[1], decoding.generate(model, long, 6)[0])


def test_beam_search_arguments():
    model, ids = gpt(), torch.randint(1, V, (1, 4))
    out, score = decoding.beam_search(model, ids, num_beams=3, max_new_tokens=0)
    assert torch.equal(out, ids) and score == 0.0                 # 0 new tokens: the prompt, score 0
    for kw, exc, match in [(dict(max_new_tokens=-1), ValueError, "max_new_tokens must be >= 0"),
                           (dict(num_beams=0), ValueError, "num_beams must be >= 1"),
                           (dict(num_beams=2.0), TypeError, "num_beams must be an integer"),
                           (dict(length_penalty=float("nan")), ValueError, "length_penalty must be a finite"),
                           (dict(eos_token_id=99), ValueError, "eos_token_id=99 is not in the model's vocabulary")]:
        args = {**dict(num_beams=2, max_new_tokens=3), **kw}
        with pytest.raises(exc, match=match):
            decoding.beam_search(model, ids, **args)
    with pytest.raises(ValueError, match="beam_search takes one prompt.*loop over the prompts"):
        decoding.beam_search(model, ids.repeat(2, 1), 2, 3)
    with pytest.raises(ValueError, match="input_ids\\[None\\]"):
        decoding.beam_search(model, ids[0], 2, 3)


def test_seq2seq_generate_lengths():
    model, src = seq2seq(), torch.randint(3, V, (2, 5))
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0, got -3"):
        model.generate(src, max_new_tokens=-3)
    out = model.generate(src, max_new_tokens=0)
    assert out.tolist() == [[1], [1]]                           # the start tokens only
    with pytest.raises(ValueError, match="input_ids holds 40"):
        model.generate(torch.full((1, 3), 40))


# ----------------------------------------------------------------------------- blocks

def test_attend_and_kv_cache():
    q = torch.randn(1, 2, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False], [True, True, True]])
    for impl in ("sdpa", "eager"):                               # a query with no key: zero output, no NaN
        out, _ = attend(q, q, q, mask, implementation=impl)
        assert torch.equal(out[:, :, 0], torch.zeros(1, 2, 4)) and torch.isfinite(out).all()
    with pytest.raises(TypeError, match="KVCache num_layers must be an integer"):
        KVCache(2.0, 1, 2, 8, 4)
    with pytest.raises(ValueError, match="KVCache batch_size must be >= 1, got 0"):
        KVCache(2, 0, 2, 8, 4)
    with pytest.raises(ValueError, match=r"names holds 5 at position \(1,\), outside \[0, size=5\)"):
        check_values([("names", torch.tensor([1, 5]), 5, "size")])


# ----------------------------------------------------------------------------- checkpoints and tokenizer files

def test_load_model_missing_folder_and_unknown_keys(tmp_path):
    for verify in (True, False):
        with pytest.raises(FileNotFoundError, match=re.escape(f"no checkpoint at {tmp_path / 'nowhere'}: the folder "
                                                              "does not exist")):
            checkpoint.load_model(tmp_path / "nowhere", GPT2LMHeadModel, GPT2Config, verify=verify)
    model = gpt()
    checkpoint.save_model(model, tmp_path, "gpt2")
    with pytest.raises(FileNotFoundError, match="checksums.json is missing.*write_checksums\\(folder\\) or pass "
                                                "verify=False"):
        checkpoint.load_model(tmp_path, GPT2LMHeadModel, GPT2Config)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_ctx": 32, "flavour": 1}))
    with pytest.raises(ValueError, match=r"config.json has keys that GPT2Config does not know: \['flavour', 'n_ctx'\]"):
        checkpoint.load_model(tmp_path, GPT2LMHeadModel, GPT2Config, verify=False)
    with pytest.raises(ValueError, match="does not know: .*another model class"):
        checkpoint.load_model(tmp_path, BertModel, BertConfig, verify=False)
    with pytest.raises(TypeError, match="config_cls must be a config dataclass"):
        checkpoint.load_model(tmp_path, GPT2LMHeadModel, dict, verify=False)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing; write it with save_model"):
        checkpoint.load_model(tmp_path, GPT2LMHeadModel, GPT2Config, verify=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.verify_checkpoint(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="save_model needs one of our models"):
        checkpoint.save_model(torch.nn.Linear(2, 2), tmp_path, "linear")
    with pytest.raises(ValueError, match="a checkpoint name is a folder name"):
        checkpoint.checkpoint_path("../tiny_gpt")


def test_load_tokenizer_verifies_checksums(tmp_path):
    tok = lm_data.train_lm_tokenizer(["the cat sat on the mat", "the dog sat"] * 5, vocab_size=270)
    lm_data.save_tokenizer(tok, tmp_path)
    with pytest.raises(FileNotFoundError, match="checksums.json is missing.*or pass verify=False"):
        lm_data.load_tokenizer(tmp_path)
    assert lm_data.load_tokenizer(tmp_path, verify=False).merges == tok.merges
    checkpoint.write_checksums(tmp_path)
    assert lm_data.load_tokenizer(tmp_path).merges == tok.merges
    with open(tmp_path / "merges.txt", "a", encoding="utf-8") as f:
        f.write("t h\n")                                       # an edited merge list
    with pytest.raises(ChecksumError, match="merges.txt was altered"):
        lm_data.load_tokenizer(tmp_path)
    sums = json.loads((tmp_path / "checksums.json").read_text())
    del sums["merges.txt"]
    (tmp_path / "checksums.json").write_text(json.dumps(sums))
    with pytest.raises(ChecksumError, match="checksums.json does not list merges.txt"):
        lm_data.load_tokenizer(tmp_path)
    with pytest.raises(TypeError, match="tok must be our BPETokenizer"):
        lm_data.save_tokenizer("vocab", tmp_path)


# ----------------------------------------------------------------------------- LM data

def test_lm_data_arguments():
    ids = torch.arange(20)
    for bad, exc, match in [(0, ValueError, "block_size must be >= 1"),
                            (2.5, TypeError, "block_size must be an integer")]:
        with pytest.raises(exc, match=match):
            lm_data.make_blocks(ids, bad)
    with pytest.raises(TypeError, match=r"ids must be an integer tensor of token ids \(torch.long\), got list"):
        lm_data.make_blocks(list(range(20)), 4)
    with pytest.raises(TypeError, match="got torch.float32"):
        lm_data.make_blocks(ids.float(), 4)
    blocks = lm_data.make_blocks(ids, 4)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        lm_data.BlockBatches(blocks, 0)
    with pytest.raises(ValueError, match="batch_size=9 is larger than the 4 available blocks"):
        lm_data.BlockBatches(blocks, 9)
    with pytest.raises(ValueError, match="step must be >= 0"):
        lm_data.BlockBatches(blocks, 2)(-1)
    with pytest.raises(ValueError, match=r"blocks must have shape \(M, block_size \+ 1\)"):
        lm_data.eval_batches(ids, 2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        lm_data.eval_batches(blocks, 0)
    with pytest.raises(TypeError, match="text must be a str"):
        lm_data.encode_corpus(None, ["a", "b"])
    with pytest.raises(TypeError, match="lines must be a list of strings"):
        lm_data.train_lm_tokenizer("one long string")
    with pytest.raises(ValueError, match="vocab_size must be >= 257"):
        lm_data.lm_tokenizer_config(100)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        lm_data.unigram_cross_entropy(ids, ids, 20, alpha=0.0)
    with pytest.raises(ValueError, match=r"eval_ids holds ids outside \[0, vocab_size=20\)"):
        lm_data.unigram_cross_entropy(ids, ids + 1, 20)
    with pytest.raises(ValueError, match="train_ids is empty"):
        lm_data.unigram_cross_entropy(ids[:0], ids, 20)


# ----------------------------------------------------------------------------- training

@pytest.mark.parametrize("kw,exc,match", [
    (dict(max_steps=0), ValueError, "TrainConfig.max_steps must be >= 1"),
    (dict(max_steps=10.0), TypeError, "TrainConfig.max_steps must be an integer"),
    (dict(per_device_train_batch_size=0), ValueError, "per_device_train_batch_size must be >= 1"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate must be a finite number"),
    (dict(learning_rate=-1e-3), ValueError, "learning_rate must be > 0"),
    (dict(learning_rate=0.0), ValueError, "learning_rate must be > 0"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay must be >= 0"),
    (dict(adam_beta1=1.0), ValueError, r"adam_beta1 must be in \[0, 1\)"),
    (dict(adam_beta2=-0.5), ValueError, r"adam_beta2 must be in \[0, 1\)"),
    (dict(adam_epsilon=0.0), ValueError, "adam_epsilon must be > 0"),
    (dict(warmup_steps=-1), ValueError, "warmup_steps must be >= 0"),
    (dict(max_grad_norm=float("nan")), ValueError, "max_grad_norm must be a finite number"),
    (dict(min_lr_rate=float("nan")), ValueError, "min_lr_rate must be a finite number"),
    (dict(logging_steps=0), ValueError, "logging_steps must be >= 1"),
    (dict(eval_steps=0), ValueError, "eval_steps must be >= 1"),
    (dict(seed=1.5), TypeError, "seed must be an integer"),
])
def test_train_config(kw, exc, match):
    with pytest.raises(exc, match=match):
        TrainConfig(**{**dict(max_steps=100, warmup_steps=10), **kw})


def test_training_functions():
    model = gpt()
    ids = torch.randint(0, V, (2, 6))
    with pytest.raises(TypeError, match=r"a batch must be a tuple of 2 tensors \(input_ids, labels\), got Tensor"):
        training.causal_lm_loss(model, ids)
    with pytest.raises(ValueError, match=r"labels must be a tensor of the shape of input_ids \(2, 6\)"):
        training.causal_lm_loss(model, (ids, ids[:, 1:]))
    with pytest.raises(ValueError, match="input_ids holds 30"):
        training.causal_lm_loss(model, (ids.fill_(30), ids))
    with pytest.raises(TypeError, match="a batch must be a tuple of 4 tensors"):
        training.seq2seq_loss(seq2seq(), (ids, ids))
    with pytest.raises(ValueError, match="max_norm must be a number > 0"):
        training.clip_grad_norm(model.parameters(), 0.0)
    with pytest.raises(ValueError, match="max_norm must be a number > 0"):
        training.clip_grad_norm(model.parameters(), float("nan"))
    assert training.clip_grad_norm(model.parameters(), math.inf) == 0.0       # no gradients yet
    with pytest.raises(ValueError, match="step must be >= 0"):
        training.lr_lambda(-1, 10, 100)
    with pytest.raises(ValueError, match=r"min_lr_rate must be in \[0, 1\]"):
        training.lr_lambda(5, 10, 100, 2.0)
    with pytest.raises(TypeError, match="model must be a torch nn.Module, got str"):
        training.evaluate("gpt", [])
    cfg = TrainConfig(max_steps=2, warmup_steps=0)
    with pytest.raises(TypeError, match="cfg must be a TrainConfig, got dict"):
        training.train(model, {"max_steps": 2}, lambda s: None, log=None)
    with pytest.raises(TypeError, match="next_batch must be a function, got list"):
        training.train(model, cfg, [(ids, ids)], log=None)


# ----------------------------------------------------------------------------- layers, blocks and the loader

def test_layers_reject_bad_sizes_eps_and_params():
    import numpy as np

    from course_lib.transformer import layers
    from course_lib.transformer.blocks import Transformer
    from course_lib.transformer.loading import load_hf_state_dict
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="layer_norm: eps must be > 0"):
        layers.layer_norm(x, torch.ones(4), torch.zeros(4), eps=0.0)
    with pytest.raises(ValueError, match="rms_norm_numpy: eps must be a finite number, got nan"):
        layers.rms_norm_numpy(x.numpy(), np.ones(4), eps=float("nan"))
    with pytest.raises(ValueError, match="normalized_shape must be >= 1"):
        layers.LayerNorm(0)
    with pytest.raises(TypeError, match="hidden_size must be an integer"):
        layers.RMSNorm(4.0)
    with pytest.raises(ValueError, match=r"params must be a dict with .*missing \['fc2.weight', 'fc2.bias'\]"):
        layers.feed_forward(x, {"fc1.weight": torch.ones(8, 4), "fc1.bias": torch.ones(8)})
    bad = {"fc1.weight": torch.ones(8, 4), "fc1.bias": torch.ones(8), "fc2.weight": torch.ones(8, 4),
           "fc2.bias": torch.ones(4)}
    with pytest.raises(ValueError, match=r"feed-forward shapes do not fit: .*stored \(out, in\) like nn.Linear"):
        layers.feed_forward_numpy(x.numpy(), {k: v.numpy() for k, v in bad.items()})
    with pytest.raises(ValueError, match="nhead must be >= 1, got 0"):
        Transformer(d_model=16, nhead=0)
    with pytest.raises(ValueError, match=r"dropout is a probability and must be in \[0, 1\)"):
        Transformer(d_model=16, nhead=2, dropout=1.0)
    with pytest.raises(TypeError, match="hf_state_dict must be a mapping name -> tensor"):
        load_hf_state_dict(gpt(), [("wte", torch.ones(1))])
    with pytest.raises(TypeError, match=r"hf_state_dict must map names to tensors; not tensors: \['a'\]"):
        load_hf_state_dict(gpt(), {"a": [1.0]})
