"""The HTTP service: endpoints, every bad request a clear 4xx, batched = unbatched over HTTP, the queue
bound (503), a client leaving mid-stream, and a clean stop (no port left open).

Small models keep this fast: the real MiniLM, a tiny random Llama (with MiniLM's tokenizer) in place of
SmolLM2, and a TREC head trained on 60 questions. Servers listen on 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from course_lib.serving import Completer, QuestionClassifier, SentenceEncoder, ServingConfig, create_app  # noqa: E402
from course_lib.serving.backends import CompletionJob  # noqa: E402
from course_lib.serving.client import free_port, load_test, port_open, ServerProcess, stream_completion  # noqa: E402


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    encoder = SentenceEncoder()
    return encoder, Completer.tiny_random(seed=0), QuestionClassifier(encoder, train_size=60)


def make_app(models, **config):
    encoder, completer, classifier = models
    return create_app(ServingConfig(**config), encoder=encoder, completer=completer, classifier=classifier)


@pytest.fixture(scope="module")
def client(models):
    with TestClient(make_app(models)) as c:
        yield c


def test_health_lists_models_and_batching(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and set(body["models"]) == {"embeddings", "completions", "classification"}
    assert body["models"]["classification"]["train_size"] == 60
    assert body["batching"] == {"max_batch_size": 16, "batch_window_ms": 5.0, "max_queue": 64}


def test_embeddings_endpoint(client, models):
    r = client.post("/v1/embeddings", json={"input": ["Who wrote Hamlet?", "Where is Paris?"]})
    assert r.status_code == 200
    body = r.json()
    got = torch.tensor([d["embedding"] for d in body["data"]])
    assert got.shape == (2, 384) and [d["index"] for d in body["data"]] == [0, 1]
    assert (got - models[0].encode(["Who wrote Hamlet?", "Where is Paris?"])).abs().max() < 1e-6
    assert body["usage"]["prompt_tokens"] == sum(models[0].count_tokens(["Who wrote Hamlet?", "Where is Paris?"]))
    single = client.post("/v1/embeddings", json={"input": "Who wrote Hamlet?"}).json()
    assert len(single["data"]) == 1


def test_classification_endpoint(client):
    r = client.post("/v1/classifications", json={"input": ["Who wrote Hamlet?", "How many feet are in a mile?"]})
    assert r.status_code == 200
    body = r.json()
    assert body["labels"] == ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]
    for d in body["data"]:
        assert d["label"] in body["labels"] and abs(sum(d["scores"].values()) - 1) < 1e-4
    assert [d["label"] for d in body["data"]] == ["HUM", "NUM"]


def test_completions_endpoint_and_stream_agree(client, models):
    completer = models[1]
    r = client.post("/v1/completions", json={"prompt": "the cat sat", "max_tokens": 6})
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    direct = completer.complete_batch([CompletionJob(completer.encode_prompt("the cat sat"), 6)])[0]
    assert choice["token_ids"] == direct.token_ids and choice["finish_reason"] == "length"
    assert r.json()["usage"]["completion_tokens"] == 6
    with client.stream("POST", "/v1/completions", json={"prompt": "the cat sat", "max_tokens": 6, "stream": True}) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in s.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    import json
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert "".join(e["text"] for e in events) == choice["text"]
    assert [e["token_id"] for e in events[:-1]] == choice["token_ids"] and events[-1]["finish_reason"] == "length"


BAD = [
    ("/v1/embeddings", {"input": ""}, 422, "empty or only whitespace"),
    ("/v1/embeddings", {"input": "   "}, 422, "empty or only whitespace"),
    ("/v1/embeddings", {"input": []}, 422, "list of texts is empty"),
    ("/v1/embeddings", {"input": ["a"] * 65}, 422, "the limit is 64"),
    ("/v1/embeddings", {"input": "a" * 4001}, 422, "4001 characters; the limit is 4000"),
    ("/v1/embeddings", {"input": "word " * 300}, 422, "the encoder's limit is 256"),
    ("/v1/embeddings", {"input": "hi", "normalise": True}, 422, "normalise: unknown field"),
    ("/v1/embeddings", {"input": 3}, 422, "input"),
    ("/v1/embeddings", {}, 422, "input: Field required"),
    ("/v1/classifications", {"input": ""}, 422, "empty or only whitespace"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 0}, 422, "max_tokens: Input should be greater than or equal to 1"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 129}, 422, "max_tokens: Input should be less than or equal to 128"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": "many"}, 422, "max_tokens"),
    ("/v1/completions", {"prompt": "hi", "max_token": 5}, 422, "max_token: unknown field"),
    ("/v1/completions", {"prompt": ""}, 422, "empty or only whitespace"),
    ("/v1/completions", {"prompt": "word " * 600}, 422, "the limit is 512"),
]


@pytest.mark.parametrize("path,body,status,words", BAD, ids=[f"{p}-{w[:20]}" for p, _, _, w in BAD])
def test_bad_requests_get_a_4xx_with_a_clear_message(client, path, body, status, words):
    r = client.post(path, json=body)
    assert r.status_code == status
    assert words in r.json()["error"]["message"]


def test_malformed_json_oversized_body_and_unknown_route(client):
    r = client.post("/v1/embeddings", content=b'{"input": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"
    assert "not valid JSON" in r.json()["error"]["message"]
    r = client.post("/v1/embeddings", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "65536 bytes" in r.json()["error"]["message"]
    assert client.post("/v1/nothing", json={}).status_code == 404
    assert client.get("/health").status_code == 200              # still alive


def test_an_endpoint_whose_model_is_not_loaded_says_how_to_load_it(models):
    with TestClient(create_app(ServingConfig(models=("embeddings",)), encoder=models[0])) as c:
        r = c.post("/v1/completions", json={"prompt": "hi"})
        assert r.status_code == 404 and "--models" in r.json()["error"]["message"]
    with pytest.raises(ValueError, match="models must be a non-empty subset"):
        ServingConfig(models=("translation",))


def test_batched_http_answers_equal_unbatched(models):
    texts = ["Who wrote Hamlet?", "Where is the Eiffel Tower?", "How far is the Moon?", "What is DNA?",
             "Name a mammal that can fly.", "Why is the sky blue?"]
    prompts = ["the cat sat", "hello", "what is the best way to learn", "a b c d e f"]

    async def fire(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            emb = await asyncio.gather(*[c.post("/v1/embeddings", json={"input": t}) for t in texts])
            cmp = await asyncio.gather(*[c.post("/v1/completions", json={"prompt": p, "max_tokens": 7})
                                         for p in prompts])
            stats = (await c.get("/health")).json()["stats"]
        return [r.json() for r in emb], [r.json() for r in cmp], stats

    out = {}
    for name, size in (("batched", 16), ("unbatched", 1)):
        out[name] = asyncio.run(fire(make_app(models, max_batch_size=size, batch_window_ms=50)))
    (emb_b, cmp_b, stats_b), (emb_u, cmp_u, stats_u) = out["batched"], out["unbatched"]
    assert stats_b["embeddings"]["largest_batch"] > 1 and stats_b["completions"]["largest_batch"] > 1
    assert stats_u["embeddings"]["largest_batch"] == 1 and stats_u["completions"]["batches"] == 4
    for b, u in zip(emb_b, emb_u):
        assert (torch.tensor(b["data"][0]["embedding"]) - torch.tensor(u["data"][0]["embedding"])).abs().max() < 1e-5
    for b, u in zip(cmp_b, cmp_u):
        assert b["choices"][0]["token_ids"] == u["choices"][0]["token_ids"]   # left padding changes nothing


def test_a_full_queue_answers_503_and_the_server_recovers(models):
    app = make_app(models, max_batch_size=1, max_queue=2)
    release = threading.Event()
    batcher = app.state.batchers["embeddings"]
    real = batcher.fn
    batcher.fn = lambda items: (release.wait(10), real(items))[1]

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            first = [asyncio.create_task(c.post("/v1/embeddings", json={"input": f"q{i}"})) for i in range(2)]
            await asyncio.sleep(0.1)
            third = await c.post("/v1/embeddings", json={"input": "one too many"})
            release.set()
            done = await asyncio.gather(*first)
            after = await c.post("/v1/embeddings", json={"input": "later"})
            return third, done, after

    third, done, after = asyncio.run(main())
    assert third.status_code == 503 and third.headers["retry-after"] == "1"
    assert third.json()["error"]["type"] == "overloaded" and "max_queue=2" in third.json()["error"]["message"]
    assert [r.status_code for r in done] == [200, 200] and after.status_code == 200


class _Slow(torch.nn.Module):
    """Wraps a causal LM and sleeps before every forward: a long generation to interrupt."""

    def __init__(self, inner, delay):
        super().__init__()
        self.inner, self.delay = inner, delay
        self.lm_head = inner.lm_head

    def new_cache(self, *a, **k):
        return self.inner.new_cache(*a, **k)

    def forward(self, *a, **k):
        time.sleep(self.delay)
        return self.inner(*a, **k)


class _Recording(Completer):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.results = []

    def complete_batch(self, jobs):
        out = super().complete_batch(jobs)
        self.results.extend(out)
        return out


def test_real_server_survives_a_client_leaving_mid_stream_and_stops_cleanly(models):
    tiny = models[1]
    slow = _Recording(_Slow(tiny.model, 0.05), tiny.tokenizer, eos_token_id=tiny.eos_token_id)
    app = create_app(ServingConfig(models=("completions",)), completer=slow)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started and port_open(port)
    url = f"http://127.0.0.1:{port}"
    try:
        events = stream_completion(url, {"prompt": "the cat sat", "max_tokens": 128})
        first = next(events)                                 # one token arrives ...
        assert first["text"] or first["token_id"] is not None
        events.close()                                       # ... and the client hangs up
        t0 = time.time()
        while not slow.results and time.time() - t0 < 60:
            time.sleep(0.05)
        assert slow.results[0].finish_reason == "cancelled"  # the row stopped early (128 tokens take >= 6 s)
        assert len(slow.results[0].token_ids) < 128
        r = httpx.post(url + "/v1/completions", json={"prompt": "hello", "max_tokens": 2}, timeout=30)
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
        report = load_test(url + "/v1/completions", [{"prompt": "hi", "max_tokens": 1}] * 6, concurrency=3)
        assert report["ok"] == 6 and report["requests"] == 6 and report["p99_ms"] >= report["p50_ms"] > 0
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive() and not port_open(port)    # stopped, nothing listening


@pytest.mark.slow
def test_the_entry_point_starts_answers_and_stops_on_sigint():
    """``python -m course_lib.serving`` as a subprocess (MiniLM only): SIGINT exits 0 and frees the port."""
    with ServerProcess(["--models", "embeddings", "--threads", "1"]) as server:
        r = httpx.post(server.url + "/v1/embeddings", json={"input": "hello"}, timeout=60)
        assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
        r = httpx.post(server.url + "/v1/embeddings", content=b"{", timeout=60)         # no JSON content type
        assert r.status_code == 415 and "Content-Type: application/json" in r.json()["error"]["message"]
    assert server.proc.returncode == 0, server.output()
    assert not port_open(server.port)
