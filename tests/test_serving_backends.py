"""The models behind the service: MiniLM sentence embeddings equal a direct computation, and batched
answers equal unbatched ones (embeddings within 1e-5, greedy completions token for token)."""
from __future__ import annotations

import threading

import pytest
import torch

from course_lib import data
from course_lib.serving.backends import CompletionJob, Completer, SentenceEncoder
from course_lib.transformer import decoding

TEXTS = ["What is the capital of France?", "A", "How many legs does a spider have, and why eight rather than six?",
         "Who wrote Hamlet?"]
PROMPTS = ["the cat sat on the", "hello", "what is the best way to learn about transformers and attention"]


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder()


@pytest.fixture(scope="module")
def completer():
    return Completer.tiny_random(seed=0)


def test_embeddings_equal_a_direct_mean_pooling_with_huggingface(encoder):
    from transformers import AutoModel, AutoTokenizer
    path = str(data.minilm_path())
    tok, hf = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = hf(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    expected = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)   # sentence-transformers' recipe
    ours = encoder.encode(TEXTS)
    assert ours.shape == (4, 384) and encoder.normalize and encoder.max_length == 256
    assert (ours - expected).abs().max() < 1e-5
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(4))
    # a known neighbour ranks high: the two "capital" questions are closer than capital/spider
    e = encoder.encode(["What is the capital of Germany?"])[0]
    assert e @ ours[0] > e @ ours[2] + 0.2


def test_batched_embeddings_equal_unbatched(encoder):
    batched = encoder.embed_batch([[TEXTS[0]], TEXTS[1:3], [TEXTS[3]]])
    assert [b.shape[0] for b in batched] == [1, 2, 1]
    alone = torch.cat([encoder.encode([t]) for t in TEXTS])
    assert (torch.cat(batched) - alone).abs().max() < 1e-5


def jobs_for(completer, prompts, max_tokens):
    return [CompletionJob(completer.encode_prompt(p), n) for p, n in zip(prompts, max_tokens)]


def test_batched_greedy_completions_equal_unbatched_and_generate(completer):
    lengths = [12, 5, 9]
    batched = completer.complete_batch(jobs_for(completer, PROMPTS, lengths))
    for prompt, n, got in zip(PROMPTS, lengths, batched):
        alone = completer.complete_batch(jobs_for(completer, [prompt], [n]))[0]
        assert got.token_ids == alone.token_ids and got.text == alone.text
        ids = torch.tensor([completer.encode_prompt(prompt)])
        reference = decoding.generate(completer.model, ids, n, eos_token_id=completer.eos_token_id)
        new = reference[0, ids.shape[1]:].tolist()
        assert got.token_ids == [t for t in new if t != completer.eos_token_id]
        assert len(got.token_ids) == n and got.finish_reason == "length"     # each row stops at its own limit


def test_stream_callbacks_carry_the_whole_text_and_cancel_stops_a_row(completer):
    pieces, cancel = [], threading.Event()

    def on_token(tok, text):
        pieces.append(text)
        if len(pieces) == 3:
            cancel.set()                    # the client goes away after three tokens

    streamed = CompletionJob(completer.encode_prompt(PROMPTS[0]), 10, on_token=lambda t, s: None)
    collected = []
    streamed.on_token = lambda tok, text: collected.append(text)
    cancelled = CompletionJob(completer.encode_prompt(PROMPTS[1]), 10, on_token=on_token, cancel=cancel)
    full, cut = completer.complete_batch([streamed, cancelled])
    assert "".join(collected) == full.text and full.finish_reason == "length"
    assert cut.finish_reason == "cancelled" and len(cut.token_ids) == 3


def test_end_of_sequence_stops_a_row(completer):
    job = jobs_for(completer, [PROMPTS[0]], [6])
    first = completer.complete_batch(job)[0].token_ids
    k = next(k for k in range(1, 6) if first[k] not in first[:k])      # a token that first appears at k
    stopper = Completer(completer.model, completer.tokenizer, eos_token_id=first[k])
    out = stopper.complete_batch(jobs_for(stopper, [PROMPTS[0], PROMPTS[1]], [6, 6]))
    assert out[0].token_ids == first[:k] and out[0].finish_reason == "stop"


@pytest.mark.slow
def test_real_smollm2_batched_equals_unbatched():
    """SmolLM2-135M through our Llama: a left-padded batch gives the same greedy tokens as each prompt alone."""
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    smol = Completer.smollm2()
    prompts = ["What is the capital of France?", "Name a colour.", "Write one word that rhymes with cat."]
    jobs = [CompletionJob(smol.encode_prompt(p, chat=True), 8) for p in prompts]
    batched = smol.complete_batch(jobs)
    for job, got in zip(jobs, batched):
        alone = smol.complete_batch([CompletionJob(job.prompt_ids, 8)])[0]
        assert got.token_ids == alone.token_ids
    assert "Paris" in batched[0].text
