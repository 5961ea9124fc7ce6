"""The HTTP service: FastAPI routes over the batchers, with the limits and the error handlers.

``create_app(config)`` loads the models named in ``config.models`` (or takes ready ones, as the
tests do) and returns an ASGI app; ``python -m course_lib.serving`` runs it with uvicorn.

============================  =====================================================================
``GET  /health``              status, loaded models, batching settings, per-endpoint statistics
``POST /v1/embeddings``       :class:`~.schemas.EmbeddingRequest` -> :class:`~.schemas.EmbeddingResponse`
``POST /v1/completions``      :class:`~.schemas.CompletionRequest` -> :class:`~.schemas.CompletionResponse`,
                              or server-sent :class:`~.schemas.CompletionChunk` events with ``stream``
``POST /v1/classifications``  :class:`~.schemas.ClassificationRequest` -> :class:`~.schemas.ClassificationResponse`
============================  =====================================================================

The interactive documentation of every schema is served at ``/docs`` (OpenAPI at ``/openapi.json``).
"""
from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..utils import check_int
from . import schemas as S
from .backends import CompletionJob, Completer, QuestionClassifier, SentenceEncoder
from .batcher import DynamicBatcher, QueueFullError

__all__ = ["ServingConfig", "create_app", "MODELS"]

MODELS = ("embeddings", "completions", "classification")


@dataclass
class ServingConfig:
    """Server settings (``python -m course_lib.serving --help`` lists the same names)."""
    models: tuple = MODELS
    max_batch_size: int = 16          # 1 switches dynamic batching off
    batch_window_ms: float = 5.0
    max_queue: int = 64               # requests waiting or running per endpoint; more -> 503
    max_body_bytes: int = 65536       # larger request bodies -> 413
    max_prompt_tokens: int = 512      # completions: longer prompts -> 422
    classifier_train_size: int = 300

    def __post_init__(self):
        unknown = set(self.models) - set(MODELS)
        if unknown or not self.models:
            raise ValueError(f"models must be a non-empty subset of {MODELS}, got {self.models!r}")
        for name in ("max_batch_size", "max_queue", "max_body_bytes", "max_prompt_tokens", "classifier_train_size"):
            check_int(name, getattr(self, name), minimum=1)


def _error(status: int, kind: str, message: str, details: list[str] = (), headers: dict | None = None):
    from fastapi.responses import JSONResponse
    body = S.ErrorResponse(error=S.ErrorBody(type=kind, message=message, details=list(details)))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


class BodyLimit:
    """ASGI middleware: a POST body must be JSON (else 415) and at most ``max_bytes`` (else 413),
    checked before any route parses it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = _error(413, "request_too_large", f"the request body exceeds the limit of {self.max_bytes} "
                         "bytes; send fewer or shorter texts")
        headers = dict(scope["headers"])
        if scope["method"] == "POST" and not headers.get(b"content-type", b"").startswith(b"application/json"):
            return await _error(415, "unsupported_media_type", "send the body as JSON with the header "
                                "Content-Type: application/json")(scope, receive, send)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await too_big(scope, receive, send)
        chunks, size = [], 0
        while True:                                   # read the (bounded) body, then replay it to the app
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await too_big(scope, receive, send)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()                    # later: the disconnect a streaming route listens for
        await self.app(scope, replay, send)


def _validation_message(exc) -> tuple[int, str, str, list[str]]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        where = e.get("ctx", {}).get("error", "")
        return 400, "invalid_json", f"the request body is not valid JSON ({where}); send a JSON object", []
    details = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field; remove it (see /docs for the fields this endpoint accepts)"
        details.append(f"{loc}: {msg}")
    return 422, "invalid_request", "; ".join(details), details


def _submit(batcher: DynamicBatcher, item) -> asyncio.Future:
    """Queue ``item``; a full queue becomes a 503 with ``Retry-After`` (nothing queued)."""
    try:
        return batcher.submit(item)
    except QueueFullError as exc:
        raise ApiError(503, "overloaded", str(exc), headers={"Retry-After": "1"}) from None


def create_app(config: ServingConfig | None = None, encoder: SentenceEncoder | None = None,
               completer: Completer | None = None, classifier: QuestionClassifier | None = None):
    """Build the FastAPI app; models in ``config.models`` that are not passed in are loaded here."""
    try:
        from fastapi import FastAPI
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import StreamingResponse
    except ImportError as exc:
        raise ImportError("the service needs FastAPI and uvicorn: pip install fastapi==0.165.0 uvicorn==0.54.0 "
                          "httpx==0.28.1") from exc
    cfg = config or ServingConfig()
    if "embeddings" in cfg.models or "classification" in cfg.models:
        encoder = encoder or SentenceEncoder()
    if "completions" in cfg.models:
        completer = completer or Completer.smollm2()
    if "classification" in cfg.models:
        classifier = classifier or QuestionClassifier(encoder, train_size=cfg.classifier_train_size)
    batch = dict(max_batch_size=cfg.max_batch_size, batch_window_ms=cfg.batch_window_ms, max_queue=cfg.max_queue)
    batchers = {}
    if "embeddings" in cfg.models:
        batchers["embeddings"] = DynamicBatcher(encoder.embed_batch, name="embeddings", **batch)
    if "completions" in cfg.models:
        batchers["completions"] = DynamicBatcher(completer.complete_batch, name="completions", **batch)
    if "classification" in cfg.models:
        batchers["classification"] = DynamicBatcher(classifier.classify_batch, name="classification", **batch)

    @asynccontextmanager
    async def lifespan(app):
        yield
        for b in batchers.values():                  # clean stop: workers cancelled, threads joined
            await b.close()

    app = FastAPI(title="course_lib serving", version="1.0", lifespan=lifespan,
                  description="MiniLM embeddings, SmolLM2 completions and TREC-6 question types, batched.")
    app.state.config, app.state.batchers = cfg, batchers
    app.state.encoder, app.state.completer, app.state.classifier = encoder, completer, classifier
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        status, kind, message, details = _validation_message(exc)
        return _error(status, kind, message, details)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return _error(exc.status, exc.kind, exc.message, headers=exc.headers)

    def need(name: str) -> DynamicBatcher:
        if name not in batchers:
            raise ApiError(404, "model_not_loaded", f"this server was started without {name!r}; restart it "
                           f"with --models including {name}")
        return batchers[name]

    def check_encoder_lengths(texts: list[str]) -> int:
        counts = encoder.count_tokens(texts)
        for i, n in enumerate(counts):
            if n > encoder.max_length:
                raise ApiError(422, "input_too_long", f"input[{i}] has {n} word pieces; the encoder's limit is "
                               f"{encoder.max_length}: shorten or split the text")
        return sum(counts)

    @app.get("/health", response_model=S.HealthResponse)
    async def health():
        models = {}
        if encoder is not None:
            models["embeddings"] = {"name": encoder.name, "dim": encoder.dim, "max_tokens": encoder.max_length}
        if completer is not None:
            models["completions"] = {"name": completer.name, "decoding": "greedy, KV cache"}
        if classifier is not None:
            models["classification"] = classifier.describe()
        return S.HealthResponse(models=models, stats={k: {**b.stats.as_dict(), "pending": b.pending}
                                                       for k, b in batchers.items()},
                                batching={"max_batch_size": cfg.max_batch_size,
                                          "batch_window_ms": cfg.batch_window_ms, "max_queue": cfg.max_queue})

    @app.post("/v1/embeddings", response_model=S.EmbeddingResponse, responses={
        400: {"model": S.ErrorResponse}, 413: {"model": S.ErrorResponse}, 422: {"model": S.ErrorResponse},
        503: {"model": S.ErrorResponse}})
    async def embeddings(req: S.EmbeddingRequest):
        batcher = need("embeddings")
        tokens = check_encoder_lengths(req.input)
        emb = await _submit(batcher, req.input)
        data = [S.Embedding(index=i, embedding=e.tolist()) for i, e in enumerate(emb)]
        return S.EmbeddingResponse(model=encoder.name, data=data,
                                   usage=S.Usage(prompt_tokens=tokens, total_tokens=tokens))

    @app.post("/v1/classifications", response_model=S.ClassificationResponse, responses={
        400: {"model": S.ErrorResponse}, 422: {"model": S.ErrorResponse}, 503: {"model": S.ErrorResponse}})
    async def classifications(req: S.ClassificationRequest):
        batcher = need("classification")
        tokens = check_encoder_lengths(req.input)
        probs = await _submit(batcher, req.input)
        labels = classifier.labels
        data = [S.Classification(index=i, label=labels[int(p.argmax())],
                                 scores={name: round(float(v), 6) for name, v in zip(labels, p)})
                for i, p in enumerate(probs)]
        return S.ClassificationResponse(model=classifier.name, labels=labels, data=data,
                                        usage=S.Usage(prompt_tokens=tokens, total_tokens=tokens))

    @app.post("/v1/completions", response_model=S.CompletionResponse, responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or server-sent events with stream"},
        400: {"model": S.ErrorResponse}, 422: {"model": S.ErrorResponse}, 503: {"model": S.ErrorResponse}})
    async def completions(req: S.CompletionRequest):
        batcher = need("completions")
        prompt_ids = completer.encode_prompt(req.prompt, req.chat)
        if len(prompt_ids) > cfg.max_prompt_tokens:
            raise ApiError(422, "input_too_long", f"the prompt has {len(prompt_ids)} tokens; the limit is "
                           f"{cfg.max_prompt_tokens}: shorten it")
        rid = f"cmpl-{uuid.uuid4().hex[:12]}"
        usage = lambda n: S.Usage(prompt_tokens=len(prompt_ids), completion_tokens=n,   # noqa: E731
                                  total_tokens=len(prompt_ids) + n)
        if not req.stream:
            job = CompletionJob(prompt_ids, req.max_tokens)
            future = _submit(batcher, job)
            try:
                result = await future
            finally:
                job.cancel.set()                                 # the client left: stop decoding its row
            choice = S.CompletionChoice(text=result.text, finish_reason=result.finish_reason,
                                        token_ids=result.token_ids)
            return S.CompletionResponse(id=rid, model=completer.name, choices=[choice],
                                        usage=usage(len(result.token_ids)))
        loop, events = asyncio.get_running_loop(), asyncio.Queue()
        job = CompletionJob(prompt_ids, req.max_tokens,
                            on_token=lambda tok, text: loop.call_soon_threadsafe(events.put_nowait, (tok, text)))
        future = _submit(batcher, job)                           # a full queue is a 503 before streaming starts
        future.add_done_callback(lambda f: events.put_nowait(None))

        async def stream():
            sent = 0
            try:
                while (event := await events.get()) is not None:     # (token id, new text) per token
                    sent += len(event[1])
                    chunk = S.CompletionChunk(id=rid, text=event[1], token_id=event[0])
                    yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
                result = await future
                chunk = S.CompletionChunk(id=rid, text=result.text[sent:], finish_reason=result.finish_reason,
                                          usage=usage(len(result.token_ids)))
                yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
                yield "data: [DONE]\n\n"
            except Exception as exc:                             # noqa: BLE001 - the status is already sent
                yield f"data: {json.dumps({'error': {'type': 'server_error', 'message': str(exc)}})}\n\n"
            finally:
                job.cancel.set()                                 # client gone or stream over: free the row
        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
