"""Masked-LM corruption (80/10/10) against its statistics and against DataCollatorForLanguageModeling."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from course_lib.data import minilm_path
from course_lib.pretraining.masking import IGNORE_INDEX, mask_tokens, masking_statistics, special_tokens_mask

V, MASK, CLS, SEP, PAD = 30522, 103, 101, 102, 0
SPECIAL = [PAD, 100, CLS, SEP, MASK]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_path())


def padded_batch(B=256, T=96, seed=0):
    """[CLS] w ... w [SEP] [PAD] ...: random ordinary ids with random lengths."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, V, (B, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    ids[torch.arange(T)[None] >= lengths[:, None]] = PAD
    ids[:, 0] = CLS
    ids[torch.arange(B), lengths - 1] = SEP
    return ids


def test_statistics_over_many_draws_are_15_then_80_10_10():
    ids = padded_batch()
    g = torch.Generator().manual_seed(1)
    stats = [masking_statistics(ids, *mask_tokens(ids, vocab_size=V, mask_token_id=MASK, special_ids=SPECIAL,
                                                  generator=g), SPECIAL, MASK) for _ in range(8)]
    mean = {k: sum(s[k] for s in stats) / len(stats) for k in stats[0]}
    # ~8 x 256 x 70 x 0.15 = 21,000 chosen tokens: standard errors ~0.001 (chosen) and ~0.003 (mask)
    assert abs(mean["chosen"] - 0.15) < 0.005
    assert abs(mean["mask"] - 0.8) < 0.01
    assert abs(mean["random"] - 0.1) < 0.01
    assert abs(mean["kept"] - 0.1) < 0.01
    assert mean["special_chosen"] == 0


def test_special_tokens_and_padding_are_never_chosen_and_labels_are_minus_100_elsewhere():
    ids = padded_batch(64, 40)
    inputs, labels = mask_tokens(ids, vocab_size=V, mask_token_id=MASK, special_ids=SPECIAL, mlm_probability=0.9,
                                 generator=torch.Generator().manual_seed(0))
    special = special_tokens_mask(ids, SPECIAL)
    assert (labels[special] == IGNORE_INDEX).all() and torch.equal(inputs[special], ids[special])
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], ids[chosen])                        # label = the original token
    assert torch.equal(inputs[~chosen], ids[~chosen])                      # unchosen tokens untouched
    assert ids.eq(padded_batch(64, 40)).all()                              # the input was not modified


def test_identical_to_the_hugging_face_collator_for_the_same_generator_state(tokenizer):
    texts = ["The tower is 324 metres tall.", "A short one.", "Masked language models predict hidden words " * 3]
    features = [tokenizer(t) for t in texts]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.4, seed=7)
    for _ in range(3):                                                     # the generator advances identically
        theirs = collator([dict(f) for f in features])
        if _ == 0:
            ours_g = torch.Generator().manual_seed(7)
        padded = tokenizer.pad([dict(f) for f in features], return_tensors="pt")["input_ids"]
        inputs, labels = mask_tokens(padded, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                                     special_ids=tokenizer.all_special_ids, mlm_probability=0.4, generator=ours_g)
        assert torch.equal(inputs, theirs["input_ids"]) and torch.equal(labels, theirs["labels"])


def test_same_marginal_statistics_as_the_collator_with_other_probabilities(tokenizer):
    ids = padded_batch(128, 64)
    ids[ids == 100] = 1000                                                 # no [UNK]: its treatment is the same anyway
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3, mask_replace_prob=0.5,
                                               random_replace_prob=0.3, seed=3)
    theirs = collator([{"input_ids": row.tolist()} for row in ids for _ in range(1)] * 4)
    ours = mask_tokens(ids.repeat(4, 1), vocab_size=len(tokenizer), mask_token_id=103, special_ids=SPECIAL,
                       mlm_probability=0.3, mask_replace_prob=0.5, random_replace_prob=0.3,
                       generator=torch.Generator().manual_seed(99))                       # other random numbers
    s_theirs = masking_statistics(ids.repeat(4, 1), theirs["input_ids"], theirs["labels"], SPECIAL, 103)
    s_ours = masking_statistics(ids.repeat(4, 1), *ours, SPECIAL, 103)
    for key, expected in [("chosen", 0.3), ("mask", 0.5), ("random", 0.3), ("kept", 0.2)]:
        assert abs(s_ours[key] - expected) < 0.015 and abs(s_theirs[key] - expected) < 0.015, key
    assert s_ours["special_chosen"] == s_theirs["special_chosen"] == 0


def test_mask_only_and_keep_only_settings():
    ids = padded_batch(32, 32)
    kw = dict(vocab_size=V, mask_token_id=MASK, special_ids=SPECIAL, generator=torch.Generator().manual_seed(0))
    inputs, labels = mask_tokens(ids, mask_replace_prob=1.0, random_replace_prob=0.0, **kw)
    assert (inputs[labels != IGNORE_INDEX] == MASK).all()
    inputs, labels = mask_tokens(ids, mask_replace_prob=0.0, random_replace_prob=0.0, **kw)
    assert torch.equal(inputs, ids) and (labels != IGNORE_INDEX).any()   # chosen, predicted, but unchanged


def test_bad_input_raises_clear_errors():
    ids = padded_batch(2, 8)
    kw = dict(vocab_size=V, mask_token_id=MASK, special_ids=SPECIAL)
    with pytest.raises(ValueError, match="mlm_probability must be a probability in"):
        mask_tokens(ids, mlm_probability=1.5, **kw)
    with pytest.raises(ValueError, match="exceeds 1; they are fractions of the chosen tokens"):
        mask_tokens(ids, mask_replace_prob=0.8, random_replace_prob=0.3, **kw)
    with pytest.raises(ValueError, match=r"shape \(B, T\).*add a batch dimension"):
        mask_tokens(ids[0], **kw)
    with pytest.raises(TypeError, match="integer torch tensor"):
        mask_tokens(ids.float(), **kw)
    with pytest.raises(ValueError, match="does not match vocab_size=1000"):
        mask_tokens(ids, vocab_size=1000, mask_token_id=MASK, special_ids=SPECIAL)
    with pytest.raises(ValueError, match="mask_token_id=40000 is outside the vocabulary"):
        mask_tokens(ids, vocab_size=V, mask_token_id=40000, special_ids=SPECIAL)


def test_empty_batch_is_returned_unchanged():
    empty = torch.zeros((0, 5), dtype=torch.long)
    inputs, labels = mask_tokens(empty, vocab_size=V, mask_token_id=MASK, special_ids=SPECIAL)
    assert inputs.shape == labels.shape == (0, 5)
