"""Chapter 1: the course's models served over HTTP (FastAPI + uvicorn), with dynamic batching.

Modules
-------
schemas
    pydantic request/response bodies (unknown fields rejected), the limits, the error shape.
batcher
    ``DynamicBatcher``: a short window and a maximum batch size; a bounded queue (503 when full).
backends
    ``SentenceEncoder`` (MiniLM, mean pooling), ``Completer`` (SmolLM2 through our Llama, KV cache,
    batched greedy decoding with per-token callbacks), ``QuestionClassifier`` (TREC-6 head).
app
    ``ServingConfig``, ``create_app``: the routes ``/health``, ``/v1/embeddings``, ``/v1/completions``
    (optionally streamed as server-sent events), ``/v1/classifications``.
client
    ``ServerProcess`` (start on a free port, stop cleanly), ``load_test``, ``stream_completion``.

Run it with ``python -m course_lib.serving`` (needs ``pip install fastapi==0.165.0 uvicorn==0.54.0
httpx==0.28.1``). FastAPI is imported only when an app is built, so this package imports without it.
"""
from .app import MODELS, ServingConfig, create_app
from .backends import CompletionJob, CompletionResult, Completer, QuestionClassifier, SentenceEncoder
from .batcher import DynamicBatcher, QueueFullError

__all__ = ["MODELS", "ServingConfig", "create_app", "CompletionJob", "CompletionResult", "Completer",
           "QuestionClassifier", "SentenceEncoder", "DynamicBatcher", "QueueFullError"]
