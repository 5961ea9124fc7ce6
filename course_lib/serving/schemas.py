"""The service's request and response bodies: pydantic models, the limits, and the error shape.

Every request model forbids unknown fields (``extra="forbid"``), so a typo such as ``max_token``
is a 422 naming the field instead of a silently ignored option. The limits below are the hard
bounds of the schema; :class:`~course_lib.serving.app.ServingConfig` adds the token-level ones
(prompt length, encoder context), which need the tokenizer.

Errors always have one shape, ``{"error": {"type": ..., "message": ..., "details": [...]}}``:

==========================  ======  ==============================================================
case                        status  type
==========================  ======  ==============================================================
malformed JSON              400     ``invalid_json``
body larger than the limit  413     ``request_too_large``
not ``application/json``    415     ``unsupported_media_type``
a field wrong or unknown    422     ``invalid_request``
too many tokens             422     ``input_too_long``
queue full                  503     ``overloaded`` (with a ``Retry-After`` header)
model not loaded            404     ``model_not_loaded``
==========================  ======  ==============================================================
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["MAX_INPUTS", "MAX_CHARS", "MAX_TOKENS", "EmbeddingRequest", "EmbeddingResponse", "Embedding",
           "CompletionRequest", "CompletionResponse", "CompletionChoice", "CompletionChunk",
           "ClassificationRequest", "ClassificationResponse", "Classification", "Usage", "ErrorBody",
           "ErrorResponse", "HealthResponse"]

MAX_INPUTS = 64        # texts in one embeddings / classification request
MAX_CHARS = 4000       # characters in one text or prompt
MAX_TOKENS = 128       # upper bound of a completion's max_tokens

class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


def _texts(value):
    """A str or a list of str -> list of str, with one clear message per problem."""
    texts = [value] if isinstance(value, str) else value
    if not texts:
        raise ValueError("the list of texts is empty; send at least one text")
    if len(texts) > MAX_INPUTS:
        raise ValueError(f"{len(texts)} texts in one request; the limit is {MAX_INPUTS}: split the request")
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(f"input[{i}] is empty or only whitespace; send at least one visible character")
        if len(t) > MAX_CHARS:
            raise ValueError(f"input[{i}] has {len(t)} characters; the limit is {MAX_CHARS}: shorten or split it")
    return texts


class EmbeddingRequest(_Request):
    """``POST /v1/embeddings``: one text or a list of up to ``MAX_INPUTS`` texts."""
    input: str | list[str] = Field(description="a text or a list of texts to embed (1 to 64 texts, each 1 to "
                                   "4000 characters, not blank)")
    model: str | None = Field(None, description="ignored if given; the server serves one encoder")

    @field_validator("input")
    @classmethod
    def _non_blank(cls, v):
        return _texts(v)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float]            # 384 floats, unit length


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[Embedding]
    usage: Usage


class CompletionRequest(_Request):
    """``POST /v1/completions``: greedy continuation of one prompt, optionally streamed."""
    prompt: str = Field(description="the text to continue (1 to 4000 characters, not blank)")
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS, description="new tokens to generate, 1 to 128")
    stream: bool = Field(False, description="send each token as a server-sent event as soon as it exists")
    chat: bool = Field(False, description="wrap the prompt as one user turn of the model's chat template")
    model: str | None = Field(None, description="ignored if given; the server serves one language model")

    @field_validator("prompt")
    @classmethod
    def _non_blank(cls, v):
        return _texts(v)[0]


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["stop", "length", "cancelled"]
    token_ids: list[int]


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class CompletionChunk(BaseModel):
    """One server-sent event of a streamed completion: ``data: {json}``; the stream ends with ``data: [DONE]``."""
    id: str
    object: Literal["text_completion.chunk"] = "text_completion.chunk"
    text: str
    token_id: int | None = None
    finish_reason: Literal["stop", "length", "cancelled"] | None = None
    usage: Usage | None = None


class ClassificationRequest(_Request):
    """``POST /v1/classifications``: TREC-6 question type of each text."""
    input: str | list[str] = Field(description="a question or a list of questions (1 to 64, each 1 to 4000 "
                                   "characters, not blank)")
    model: str | None = Field(None, description="ignored if given")

    @field_validator("input")
    @classmethod
    def _non_blank(cls, v):
        return _texts(v)


class Classification(BaseModel):
    index: int
    label: str
    scores: dict[str, float]           # softmax probability of every label


class ClassificationResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    labels: list[str]
    data: list[Classification]
    usage: Usage


class ErrorBody(BaseModel):
    type: str
    message: str
    details: list[str] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    models: dict[str, dict]            # name -> description (e.g. the classifier's training set and time)
    batching: dict[str, float | int]   # max_batch_size, batch_window_ms, max_queue
    stats: dict[str, dict]             # per endpoint: requests, batches, mean batch size, rejected, cancelled
