"""The training loop (schedule, AdamW groups, clipping, evaluation), LM data, checkpoints, pinyin task."""
from __future__ import annotations

import json
import math

import pytest
import torch
import transformers

from course_lib.data import ChecksumError
from course_lib.transformer import checkpoint, lm_data, pinyin, training
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel
from course_lib.transformer.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.transformer.training import TrainConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_gpt(vocab_size=16, n_positions=16, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=32, n_layer=2,
                                      n_head=2, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                      bos_token_id=0, eos_token_id=0))


# ----------------------------------------------------------------------------- schedule

def test_schedule_values_exact():
    cfg = TrainConfig(max_steps=110, warmup_steps=10, learning_rate=1e-3, min_lr_rate=0.1)
    assert training.learning_rate_at(0, cfg) == 0.0                       # HF: the first step has lr 0
    assert training.learning_rate_at(5, cfg) == pytest.approx(0.5e-3, abs=1e-15)
    assert training.learning_rate_at(10, cfg) == pytest.approx(1e-3, abs=1e-15)      # peak after warm-up
    assert training.learning_rate_at(60, cfg) == pytest.approx(0.55e-3, abs=1e-15)   # half-way: (1 + r) / 2
    assert training.learning_rate_at(110, cfg) == pytest.approx(1e-4, abs=1e-15)     # the end: r * lr
    lrs = [training.learning_rate_at(s, cfg) for s in range(111)]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))                 # rises during the warm-up
    assert all(a > b for a, b in zip(lrs[10:110], lrs[11:]))               # then falls monotonically


@pytest.mark.parametrize("warmup, total, rate", [(10, 110, 0.1), (0, 50, 0.0), (7, 7, 0.2), (3, 40, 1.0)])
def test_schedule_equals_transformers(warmup, total, rate):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = transformers.get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr_rate=rate)
    for step in range(total + 1):
        assert training.lr_lambda(step, warmup, total, rate) == opt.param_groups[0]["lr"], step
        opt.step()
        sched.step()


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="warmup_steps must be in"):
        TrainConfig(max_steps=10, warmup_steps=20)
    with pytest.raises(ValueError, match="min_lr_rate"):
        TrainConfig(min_lr_rate=1.5)
    with pytest.raises(ValueError, match="max_grad_norm must be > 0"):
        TrainConfig(max_grad_norm=0.0)


# ----------------------------------------------------------------------------- optimiser

def test_weight_decay_groups():
    model = tiny_gpt()
    decay, no_decay = training.param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith(".bias") or ".ln_" in n for n in no_decay["names"])
    assert "transformer.ln_f.weight" in no_decay["names"] and "transformer.h.0.ln_1.weight" in no_decay["names"]
    assert {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.1.mlp.c_fc.weight",
            "transformer.h.0.attn.c_attn.weight"} <= set(decay["names"])
    assert not any(n.endswith(".bias") for n in decay["names"])
    assert "lm_head.weight" not in decay["names"]                           # tied to wte: listed once
    ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))       # every parameter exactly once
    opt = training.make_optimizer(model, TrainConfig(weight_decay=0.1, adam_beta2=0.98))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert opt.param_groups[0]["betas"] == (0.9, 0.98)


def test_weight_decay_moves_only_the_decayed_group():
    model = tiny_gpt()
    opt = training.make_optimizer(model, TrainConfig(learning_rate=0.1, weight_decay=0.5))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)                                        # no gradient: only the decay acts
    opt.step()
    assert torch.allclose(model.transformer.wte.weight, torch.tensor(1 - 0.1 * 0.5))   # theta (1 - lr wd)
    assert torch.equal(model.transformer.ln_f.weight, torch.ones(32))
    assert torch.equal(model.transformer.h[0].attn.c_attn.bias, torch.ones(96))


def test_clipping_bounds_the_norm_and_equals_torch():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    for p, q in zip(a, b):
        p.grad = torch.randn_like(p) * 10
        q.grad = p.grad.clone()
    norm = training.clip_grad_norm(a, 1.0)
    ref = torch.nn.utils.clip_grad_norm_(b, 1.0)
    assert norm == pytest.approx(float(ref), rel=1e-6) and norm > 10
    for p, q in zip(a, b):
        torch.testing.assert_close(p.grad, q.grad)
    after = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in a))
    assert after <= 1.0 + 1e-5 and after > 0.99
    small = [p.grad.clone() for p in a]
    training.clip_grad_norm(a, 5.0)                                         # below the bound: unchanged
    assert all(torch.equal(p.grad, s) for p, s in zip(a, small))


# ----------------------------------------------------------------------------- loop and evaluation

def successor_batches(vocab_size=16, T=12, B=8):
    """Synthetic LM task: the next token is (token + 1) mod V, from a random start."""
    def batch(step):
        g = torch.Generator().manual_seed(step)
        start = torch.randint(0, vocab_size, (B, 1), generator=g)
        seq = (start + torch.arange(T + 1)) % vocab_size                   # (B, T + 1)
        return seq[:, :-1], seq[:, 1:]
    return batch


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_falls_on_a_synthetic_task(seed):
    model = tiny_gpt(seed=seed)
    batches = successor_batches()
    valid = [batches(10_000 + i) for i in range(2)]
    cfg = TrainConfig(max_steps=60, learning_rate=1e-2, warmup_steps=5, logging_steps=20, eval_steps=30, seed=seed)
    lines = []
    hist = training.train(model, cfg, batches, eval_fn=lambda m: training.evaluate(m, valid), log=lines.append)
    assert hist.eval_step == [0, 30, 60] and hist.step == [20, 40, 60] and len(lines) == 3
    assert hist.eval_loss[0] > math.log(16) - 0.5                          # untrained: about ln V
    assert hist.eval_loss[-1] < 0.1 * hist.eval_loss[0]                   # learned the rule
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.learning_rate == [training.learning_rate_at(s - 1, cfg) for s in hist.step]
    assert "val loss" in lines[-1] and lines[0].startswith("step    20/60 | train loss ")
    assert training.History.from_dict(json.loads(json.dumps(hist.to_dict()))) == hist


def test_training_is_reproducible():
    runs = []
    for _ in range(2):
        model = tiny_gpt(dropout=0.1)
        cfg = TrainConfig(max_steps=8, learning_rate=1e-2, warmup_steps=2, logging_steps=4)
        runs.append(training.train(model, cfg, successor_batches(), log=None).train_loss)
    assert runs[0] == runs[1]


def test_evaluate_weights_by_tokens_and_restores_mode():
    model = tiny_gpt()
    b1, b2 = successor_batches(B=1)(0), successor_batches(B=5)(1)
    with torch.no_grad():
        l1, l2 = training.causal_lm_loss(model, b1)[0], training.causal_lm_loss(model, b2)[0]
    model.train()
    got = training.evaluate(model, [b1, b2])
    assert got == pytest.approx((float(l1) * 12 + float(l2) * 60) / 72, rel=1e-6)
    assert model.training
    with pytest.raises(ValueError, match="no tokens"):
        training.evaluate(model, [])


def test_divergence_raises():
    model = tiny_gpt()
    with torch.no_grad():
        model.transformer.wte.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="lower learning_rate"):
        training.train(model, TrainConfig(max_steps=2, warmup_steps=0), successor_batches(), log=None)


# ----------------------------------------------------------------------------- LM data and tokenizer files

def test_blocks_and_batches():
    ids = torch.arange(23)
    blocks = lm_data.make_blocks(ids, 5)
    assert blocks.shape == (4, 6) and blocks[1].tolist() == [5, 6, 7, 8, 9, 10]
    sampler = lm_data.BlockBatches(blocks, 2, seed=3)
    x, y = sampler(0)
    assert x.shape == y.shape == (2, 5) and torch.equal(y[:, :-1], x[:, 1:])
    seen = torch.cat([sampler(0)[0], sampler(1)[0]])[:, 0].sort().values     # one epoch = every block once
    assert seen.tolist() == [0, 5, 10, 15]
    assert torch.equal(lm_data.BlockBatches(blocks, 2, seed=3)(1)[0], sampler(1)[0])   # reproducible
    assert sum(len(x) for x, _ in lm_data.eval_batches(blocks, 3)) == 4
    with pytest.raises(ValueError, match="too short for one block"):
        lm_data.make_blocks(torch.arange(5), 8)
    with pytest.raises(ValueError, match="1-D stream"):
        lm_data.make_blocks(torch.zeros(2, 9, dtype=torch.long), 4)


def test_unigram_cross_entropy():
    train_ids, eval_ids = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 3])
    # add-one: p(0) = 3 / 8, p(3) = 1 / 8
    expected = -(math.log(3 / 8) + math.log(1 / 8)) / 2
    assert lm_data.unigram_cross_entropy(train_ids, eval_ids, 4) == pytest.approx(expected, rel=1e-12)


def test_tokenizer_files_round_trip_and_load_in_transformers(tmp_path):
    lines = ["The cat sat on the mat .", "The dog sat on the log .", "Cats and dogs , 猫 ."] * 20
    tok = lm_data.train_lm_tokenizer(lines, vocab_size=300)
    lm_data.save_tokenizer(tok, tmp_path)
    checkpoint.write_checksums(tmp_path)                                   # load_tokenizer verifies them
    back = lm_data.load_tokenizer(tmp_path)
    text = "The cat and the dog sat .\n 猫 and a zebra"
    assert back.merges == tok.merges and back.vocab == tok.vocab and back.encode(text) == tok.encode(text)
    assert back.decode(back.encode(text)) == text
    hf = transformers.GPT2Tokenizer.from_pretrained(tmp_path)               # reads vocab.json + merges.txt
    assert hf(text)["input_ids"] == tok.encode(text)                      # GPT-2's own format
    with pytest.raises(FileNotFoundError, match="lacks"):
        lm_data.load_tokenizer(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_and_tamper_detection(tmp_path):
    model = tiny_gpt().eval()
    checkpoint.save_model(model, tmp_path, "gpt2")
    (tmp_path / "notes.txt").write_text("history")
    sums = checkpoint.write_checksums(tmp_path)
    assert set(sums) == {"model.safetensors", "config.json", "notes.txt"}
    back = checkpoint.load_model(tmp_path, GPT2LMHeadModel, GPT2Config)
    ids = torch.randint(0, 16, (2, 9))
    with torch.no_grad():
        assert torch.equal(back(ids), model(ids))
    assert back.lm_head.weight is back.transformer.wte.weight            # tying rebuilt, not stored twice
    original = (tmp_path / "model.safetensors").read_bytes()
    data = bytearray(original)
    data[-1] ^= 1                                                         # flip one bit of one weight
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="model.safetensors was altered"):
        checkpoint.load_model(tmp_path, GPT2LMHeadModel, GPT2Config)
    (tmp_path / "model.safetensors").write_bytes(original)
    assert checkpoint.verify_checkpoint(tmp_path) == sums
    (tmp_path / "notes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="notes.txt is missing"):
        checkpoint.verify_checkpoint(tmp_path)


# ----------------------------------------------------------------------------- the pinyin task

def test_pinyin_pairs_and_vocab():
    pairs = pinyin.load_pinyin_pairs()
    assert len(pairs) == 4354 and all(len(c) == len(s) for c, s in pairs)
    assert pairs[0] == (list("老师您好"), ["lao3", "shi1", "nin2", "hao3"])
    train, valid, test = pinyin.split_pairs(pairs)
    assert (len(train), len(valid), len(test)) == (3484, 435, 435)
    vocab = pinyin.Vocab.build(train)
    assert vocab.itos[:4] == pinyin.SPECIALS
    ids = vocab.encode(["老", "lao3", "𠀀"])
    assert ids[-1] == 3 and vocab.decode(ids[:2] + [2, 5]) == ["老", "lao3"]     # stops at </s>


def test_pinyin_collate_and_padding_is_ignored():
    vocab = pinyin.Vocab(pinyin.SPECIALS + ["你", "好", "ni3", "hao3"])
    enc = pinyin.encode_pairs([(["你", "好"], ["ni3", "hao3"]), (["好"], ["hao3"])], vocab)
    src, mask, dec_in, labels = pinyin.pair_batches(enc, 2)[0]
    assert src.tolist() == [[4, 5, 2], [5, 2, 0]] and mask.tolist() == [[True] * 3, [True, True, False]]
    assert labels.tolist() == [[6, 7, 2], [7, 2, 0]] and dec_in.tolist() == [[1, 6, 7], [1, 7, 0]]
    torch.manual_seed(0)
    model = Seq2SeqTransformer(Seq2SeqConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                                             encoder_attention_heads=2, encoder_ffn_dim=32, dropout=0.0)).eval()
    alone = pinyin.pair_batches(enc[1:], 1)[0]
    with torch.no_grad():
        l_pad, n_pad = training.seq2seq_loss(model, tuple(t[1:] for t in (src, mask, dec_in, labels)))
        l_alone, n_alone = training.seq2seq_loss(model, alone)
    assert n_pad == n_alone == 2 and float(l_pad) == pytest.approx(float(l_alone), rel=1e-5)
    maps = pinyin.cross_attention(model, src, dec_in)
    assert len(maps) == 1 and maps[0].shape == (2, 2, 3, 3)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, 3))
    assert float(maps[0][1, :, :, 2].max()) == 0.0                        # padded source gets no attention


def test_baseline_and_metrics():
    train = [(list("了解"), ["liao3", "jie3"]), (list("好了"), ["hao3", "le5"]), (list("来了"), ["lai2", "le5"])]
    base = pinyin.MostFrequentReading(train)
    assert base.predict(list("了解吗")) == ["le5", "jie3", "<unk>"]
    words = [(list("吗啡"), ["ma3", "fei1"]), (list("好吗"), ["hao3", "ma5"]), (list("干吗"), ["gan4", "ma2"]),
             (list("什么"), ["shen2", "me5"]), (list("要么"), ["yao4", "me5"])]
    with_dict = pinyin.MostFrequentReading(train, fallback=words + [(list("了"), ["liao4"])] * 5)
    assert with_dict.predict(list("了解吗么")) == ["le5", "jie3", "ma3", "me5"]   # training sentences first
    assert with_dict.counts == base.counts
    preds, refs = [["a", "b"], ["c"]], [["a", "b"], ["c", "d"]]
    assert pinyin.exact_match(preds, refs) == 0.5
    assert pinyin.token_accuracy(preds, refs) == 0.75
    kinds = pinyin.accuracy_by_kind([["le5", "jie3", "x"], ["lai2", "le5"]],
                                    [(list("了解吗"), ["liao3", "jie3", "ma5"]), (list("来了"), ["lai2", "le5"])],
                                    base.counts)
    assert kinds == {"one reading": (2, 1.0), "several readings": (2, 0.5), "unseen": (1, 0.0)}


def test_cedict_pairs_are_clean():
    pairs = pinyin.load_pinyin_pairs()
    charset = {c for chars, _ in pairs for c in chars}
    words = pinyin.load_cedict_pairs(charset)
    assert 50_000 < len(words) < 70_000
    assert all(len(c) == len(s) >= 2 and set(c) <= charset for c, s in words)
    assert all(s[-1] in "12345" and s[:-1].isalpha() and s.islower() for _, syl in words for s in syl)
    readings = {"".join(c): " ".join(s) for c, s in words}
    assert readings["了解"] == "liao3 jie3" and readings["女儿"] == "nv3 er2"      # u: written v


def test_cjk_font_lookup_never_warns(recwarn):
    font = pinyin.find_cjk_font()
    assert font is None or font.get_file().endswith((".ttf", ".ttc", ".otf"))
    assert not recwarn.list


def test_seq2seq_learns_to_copy():
    vocab = pinyin.Vocab(pinyin.SPECIALS + list("abcdef") + ["A", "B", "C", "D", "E", "F"])
    g = torch.Generator().manual_seed(0)
    def pair():
        s = [vocab.itos[4 + int(i)] for i in torch.randint(0, 6, (int(torch.randint(2, 6, (1,), generator=g)),),
                                                           generator=g)]
        return s, [c.upper() for c in s]
    train = [pair() for _ in range(400)]
    test = [pair() for _ in range(50)]
    torch.manual_seed(0)
    model = Seq2SeqTransformer(Seq2SeqConfig(vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
                                             encoder_attention_heads=2, encoder_ffn_dim=64, dropout=0.0,
                                             normalize_before=True))
    cfg = TrainConfig(max_steps=250, learning_rate=5e-3, warmup_steps=10, logging_steps=50)
    training.train(model, cfg, pinyin.PairBatches(pinyin.encode_pairs(train, vocab), 32),
                   loss_fn=training.seq2seq_loss, log=None)
    preds = pinyin.translate(model, [s for s, _ in test], vocab)
    assert pinyin.token_accuracy(preds, [t for _, t in test]) > 0.95      # >= 0.99 for seeds 0-3


# ----------------------------------------------------------------------------- the shipped checkpoints

def test_shipped_tiny_gpt_reproduces_its_recorded_loss():
    from course_lib.data import load_wikitext2
    folder = checkpoint.checkpoint_path("tiny_gpt")
    record = json.loads((folder / "history.json").read_text())
    model = checkpoint.load_model(folder, GPT2LMHeadModel, GPT2Config)          # checksums verified
    tok = lm_data.load_tokenizer(folder)
    blocks = lm_data.make_blocks(lm_data.encode_corpus(tok, load_wikitext2("valid")[:300_000]), 128)
    loss = training.evaluate(model, lm_data.eval_batches(blocks[:record["eval_slice_blocks"]], 32))
    assert loss == pytest.approx(record["eval_slice_loss"], abs=1e-4)
    assert math.exp(record["valid_loss"]) < 160 < math.exp(record["unigram_loss"])
    assert sum(p.stat().st_size for p in folder.iterdir()) < 8e6


def test_shipped_pinyin_model_reproduces_its_recorded_accuracy():
    folder = checkpoint.checkpoint_path("pinyin_seq2seq")
    record = json.loads((folder / "history.json").read_text())
    model = checkpoint.load_model(folder, Seq2SeqTransformer, Seq2SeqConfig)
    vocab = pinyin.Vocab(json.loads((folder / "vocab.json").read_text()))
    _, _, test = pinyin.split_pairs(pinyin.load_pinyin_pairs())
    preds = pinyin.translate(model, [c for c, _ in test], vocab)
    refs = [t for _, t in test]
    assert pinyin.token_accuracy(preds, refs) == pytest.approx(record["test"]["model"]["token_accuracy"], abs=1e-12)
    assert pinyin.exact_match(preds, refs) > record["test"]["baseline"]["exact_match"] + 0.05
    with pytest.raises(FileNotFoundError, match="no checkpoint 'nope'"):
        checkpoint.checkpoint_path("nope")


@pytest.mark.parametrize("name", ["tiny_gpt", "pinyin_seq2seq"])
def test_write_readme_reproduces_the_shipped_model_cards(name, tmp_path):
    import json
    import shutil

    from course_lib.transformer.checkpoint import checkpoint_path, write_readme
    src = checkpoint_path(name)
    text = (src / "README.md").read_text(encoding="utf-8")
    lines = text.split("\n")
    files = next(k for k, line in enumerate(lines) if line.startswith("- files:"))
    fence = lines.index("```", next(k for k, line in enumerate(lines) if line.startswith("## SHA-256")) + 3)
    shutil.copytree(src, tmp_path / name)
    sums = json.loads((src / "checksums.json").read_text())
    write_readme(tmp_path / name, lines[:files], sums, after=lines[fence + 2:])
    assert (tmp_path / name / "README.md").read_text(encoding="utf-8") == text
