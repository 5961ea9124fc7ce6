r"""The scale and cost calculator: parameters, FLOPs, memory and GPU-days of a Transformer, from its config.

Parameters come from the shapes of the weight matrices (exact, tested against ``sum(p.numel())``).
Compute follows Kaplan et al. (2020, Table 1): a forward pass costs about two FLOPs per weight of a
matrix multiplication per token (one multiply, one add), plus the attention scores and their
weighted sum; the backward pass costs twice the forward, so

.. math::
    C_\mathrm{train} \approx 6 N D + 6 L T d_\mathrm{attn} D,

for N matrix weights, D training tokens, L layers, context T and attention width
:math:`d_\mathrm{attn}` (the second term is the full, unmasked :math:`QK^\top` and :math:`AV`;
a causal kernel that skips the masked half does half of it).

Training memory with Adam (Kingma & Ba, 2015) in full fp32 precision is
weights + gradients + two moment estimates = 16 bytes per parameter, plus the activations the
backward pass needs (per layer and token about 16 model-width vectors for a GPT-2 block, the tensors
Korthikanti et al. 2022 count); activation checkpointing (Chen et al., 2016) keeps only each
block's input and recomputes one block at a time. A KV cache holds
:math:`2 \cdot L \cdot B \cdot H_{kv} \cdot T \cdot d_h` numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..transformer.bert import BertConfig
from ..transformer.gpt import GPT2Config
from ..transformer.llama import LlamaConfig

BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "int8": 1}


@dataclass
class ModelShape:
    """What the calculator needs to know about a Transformer (build one with :func:`shape_of`)."""
    family: str                    # "gpt2", "bert" or "llama"
    vocab_size: int
    hidden_size: int               # model width D
    num_layers: int                # L
    num_heads: int                 # H
    num_kv_heads: int              # H_kv (= H without grouped-query attention)
    head_dim: int                  # d_h
    intermediate_size: int         # FFN width F
    max_positions: int             # learned position table size (0 with RoPE)
    type_vocab_size: int = 0       # BERT's segment embeddings
    tied_embeddings: bool = True
    pooler: bool = False

    def __post_init__(self):
        if self.family not in ("gpt2", "bert", "llama"):
            raise ValueError(f"family must be 'gpt2', 'bert' or 'llama', got {self.family!r}")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                     "intermediate_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelShape.{name} must be a positive int, got {value!r}")

    @property
    def attn_width(self) -> int:
        """d_attn = H * d_h (the width of the queries)."""
        return self.num_heads * self.head_dim


def shape_of(config, pooler: bool = True) -> ModelShape:
    """The :class:`ModelShape` of our ``GPT2Config``, ``BertConfig`` or ``LlamaConfig``."""
    if isinstance(config, GPT2Config):
        D = config.n_embd
        return ModelShape("gpt2", config.vocab_size, D, config.n_layer, config.n_head, config.n_head,
                          D // config.n_head, config.n_inner or 4 * D, config.n_positions)
    if isinstance(config, BertConfig):
        D = config.hidden_size
        return ModelShape("bert", config.vocab_size, D, config.num_hidden_layers, config.num_attention_heads,
                          config.num_attention_heads, D // config.num_attention_heads, config.intermediate_size,
                          config.max_position_embeddings, config.type_vocab_size, False, pooler)
    if isinstance(config, LlamaConfig):
        return ModelShape("llama", config.vocab_size, config.hidden_size, config.num_hidden_layers,
                          config.num_attention_heads, config.num_key_value_heads, config.head_dim,
                          config.intermediate_size, 0, tied_embeddings=config.tie_word_embeddings)
    raise TypeError(f"shape_of expects a GPT2Config, BertConfig or LlamaConfig, got {type(config).__name__}; "
                    "or build a ModelShape yourself")


def parameter_counts(shape: ModelShape) -> dict[str, int]:
    """Parameters per part (``embeddings``, ``attention``, ``ffn``, ``norms``, ``head``, ``pooler``) and ``total``.

    ``matmul`` is the number of weights used in a matrix multiplication per token (all linear layers
    and the output projection, tied or not): the N of the ``2N`` FLOPs per token.
    """
    s = shape
    D, F, L, V = s.hidden_size, s.intermediate_size, s.num_layers, s.vocab_size
    dq, dkv = s.num_heads * s.head_dim, s.num_kv_heads * s.head_dim
    if s.family == "gpt2":
        emb = V * D + s.max_positions * D                               # wte + wpe
        attn = (D * 3 * D + 3 * D) + (D * D + D)                        # c_attn + c_proj (with biases)
        ffn = (D * F + F) + (F * D + D)                                 # c_fc + c_proj
        norms = L * 2 * 2 * D + 2 * D                                   # ln_1, ln_2 per layer + ln_f (gain, bias)
        attn_w, ffn_w = 4 * D * D, 2 * D * F
    elif s.family == "bert":
        emb = V * D + s.max_positions * D + s.type_vocab_size * D + 2 * D   # word, position, type + LayerNorm
        attn = 3 * (D * D + D) + (D * D + D)                                # query, key, value + output.dense
        ffn = (D * F + F) + (F * D + D)                                     # intermediate + output.dense
        norms = L * 2 * 2 * D
        attn_w, ffn_w = 4 * D * D, 2 * D * F
    else:
        emb = V * D                                                     # embed_tokens (RoPE has no table)
        attn = D * dq + 2 * D * dkv + dq * D                            # q, k, v (grouped), o; no biases
        ffn = 3 * D * F                                                 # gate, up, down (SwiGLU)
        norms = L * 2 * D + D                                           # two RMSNorm gains per layer + final
        attn_w, ffn_w = attn, ffn
    head = 0 if s.tied_embeddings or s.family == "bert" else V * D
    pooler = D * D + D if s.family == "bert" and s.pooler else 0
    counts = {"embeddings": emb, "attention": L * attn, "ffn": L * ffn, "norms": norms, "head": head,
              "pooler": pooler}
    counts["total"] = sum(counts.values())
    counts["non_embedding"] = counts["total"] - emb - head
    out_proj = V * D if s.family != "bert" else 0                        # the logits matmul (GPT-2, Llama)
    counts["matmul"] = L * (attn_w + ffn_w) + out_proj
    return counts


def flops_per_token(shape: ModelShape, seq_len: int, training: bool = True, causal_saving: bool = False) -> float:
    """FLOPs per token: ``2 N_matmul + 4 L T d_attn`` forward (x3 for training: backward = 2 x forward).

    ``causal_saving=True`` halves the attention term (a kernel that skips masked scores; Kaplan et al.'s
    ``2 L T d_attn``). Embedding look-ups, norms and softmax are ignored (< 1 % at these sizes).
    """
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int (the context length T), got {seq_len!r}")
    n = parameter_counts(shape)["matmul"]
    attention = 4 * shape.num_layers * seq_len * shape.attn_width          # QK^T and AV: 2 x 2 T d_attn per layer
    forward = 2 * n + (attention / 2 if causal_saving else attention)      # 2 FLOPs per multiply-add
    return 3 * forward if training else forward


def training_flops(shape: ModelShape, tokens: float, seq_len: int, causal_saving: bool = True) -> float:
    """Total training FLOPs ``C = tokens x flops_per_token`` (≈ 6 N D + 6 L T d_attn D)."""
    if tokens <= 0:
        raise ValueError(f"tokens must be > 0 (the number of training tokens D), got {tokens!r}")
    return tokens * flops_per_token(shape, seq_len, training=True, causal_saving=causal_saving)


def activation_elements(shape: ModelShape, batch_size: int, seq_len: int, checkpointing: bool = False) -> int:
    """Numbers the backward pass keeps from one GPT-2-style training forward (no dropout), estimated.

    Per layer and token: LayerNorm inputs (2D) and outputs fed to linears (2D), q, k, v (3D),
    attention output (D), FFN hidden before and after the activation (2F), plus the attention
    log-sum-exp per head (H) and the LayerNorm statistics (4) -> ``8D + 2F + H + 4``. The head
    keeps ln_f's input and output (2D) and the log-softmax over the vocabulary (V).
    With checkpointing only each layer's input (D) is kept, plus one layer recomputed at a time.
    """
    for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    s, tokens = shape, batch_size * seq_len
    per_layer = 8 * s.hidden_size + 2 * s.intermediate_size + s.num_heads + 4   # per token
    head = 2 * s.hidden_size + 2 + s.vocab_size
    if checkpointing:
        return tokens * (s.num_layers * s.hidden_size + per_layer + head)
    return tokens * (s.num_layers * per_layer + head)


def training_memory(shape: ModelShape, batch_size: int, seq_len: int, dtype: str = "float32",
                    optimizer: str = "adamw", checkpointing: bool = False) -> dict[str, float]:
    """Bytes of one training step: weights, gradients, optimizer states, activations and their ``total``.

    Weights, gradients and activations in ``dtype``; Adam's two moments always fp32 (8 bytes per
    parameter); ``optimizer="sgd"`` keeps none. Mixed precision's fp32 master copy is not modelled.
    """
    if dtype not in BYTES:
        raise ValueError(f"dtype must be one of {sorted(BYTES)}, got {dtype!r}")
    if optimizer not in ("adamw", "adam", "sgd"):
        raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd', got {optimizer!r}")
    n, b = parameter_counts(shape)["total"], BYTES[dtype]
    mem = {"weights": n * b, "gradients": n * b, "optimizer": 0 if optimizer == "sgd" else 2 * n * 4,
           "activations": activation_elements(shape, batch_size, seq_len, checkpointing) * b}
    mem["total"] = sum(mem.values())
    return mem


def kv_cache_bytes(shape: ModelShape, batch_size: int, seq_len: int, dtype: str = "float32") -> int:
    """``2 (K and V) x L x B x H_kv x T x d_h x bytes`` (BERT has no cache: raises)."""
    if shape.family == "bert":
        raise ValueError("an encoder (BERT) has no KV cache: it reads the whole input at once")
    if dtype not in BYTES:
        raise ValueError(f"dtype must be one of {sorted(BYTES)}, got {dtype!r}")
    s = shape
    return 2 * s.num_layers * batch_size * s.num_kv_heads * seq_len * s.head_dim * BYTES[dtype]


def inference_memory(shape: ModelShape, batch_size: int, seq_len: int, dtype: str = "float32") -> dict[str, int]:
    """Bytes to serve: the weights plus the KV cache for ``batch_size`` sequences of ``seq_len`` tokens."""
    mem = {"weights": parameter_counts(shape)["total"] * BYTES[dtype],
           "kv_cache": 0 if shape.family == "bert" else kv_cache_bytes(shape, batch_size, seq_len, dtype)}
    mem["total"] = mem["weights"] + mem["kv_cache"]
    return mem


@dataclass
class Hardware:
    """An accelerator and its price: peak dense bf16 FLOP/s, the fraction reached (MFU) and $ per GPU-hour."""
    name: str = "A100-80GB"
    peak_flops: float = 312e12      # A100 dense bf16 tensor-core peak (NVIDIA data sheet)
    mfu: float = 0.40               # model FLOPs utilisation assumed
    usd_per_gpu_hour: float = 2.0   # assumed rental price

    def __post_init__(self):
        if self.peak_flops <= 0 or not 0 < self.mfu <= 1 or self.usd_per_gpu_hour < 0:
            raise ValueError(f"need peak_flops > 0, 0 < mfu <= 1 and a price >= 0, got {asdict(self)}")


def training_time(flops: float, hardware: Hardware, num_gpus: int) -> dict[str, float]:
    """GPU-hours, wall-clock days on ``num_gpus`` and cost: ``hours = C / (peak x MFU) / 3600``."""
    if flops <= 0:
        raise ValueError(f"flops must be > 0, got {flops!r}")
    if not isinstance(num_gpus, int) or num_gpus < 1:
        raise ValueError(f"num_gpus must be a positive int, got {num_gpus!r}")
    gpu_hours = flops / (hardware.peak_flops * hardware.mfu) / 3600          # C / (peak x MFU), in hours
    return {"flops": flops, "gpu_hours": gpu_hours, "days": gpu_hours / num_gpus / 24,
            "usd": gpu_hours * hardware.usd_per_gpu_hour, "num_gpus": num_gpus, **asdict(hardware)}


# Published models: parameters and training tokens as their papers state them. GPT-2's token count
# was not published; 10 B tokens (WebText's ~40 GB of text at ~4 bytes per token, for a few epochs)
# is an assumption and marked as such.
PUBLISHED = {
    "GPT-2 XL (1.5B)": {"params": 1.5e9, "tokens": 10e9, "seq_len": 1024, "cite": "radford2019language",
                        "note": "token count assumed (not published)"},
    "GPT-3 175B": {"params": 175e9, "tokens": 300e9, "seq_len": 2048, "cite": "brown2020language",
                   "published_flops": 3.14e23, "note": "Brown et al. Table D.1: 3.14e23 FLOPs"},
    "LLaMA 7B": {"params": 6.7e9, "tokens": 1.0e12, "seq_len": 2048, "cite": "touvron2023llama",
                 "published_gpu_hours": 82432, "note": "Touvron et al. Table 15: 82,432 A100-80GB hours"},
    "SmolLM2-135M": {"params": 135e6, "tokens": 2.0e12, "seq_len": 2048, "cite": "allal2025smollm2",
                     "note": "trained on about 2 T tokens"},
}


def extrapolate(hardware: Hardware | None = None, num_gpus: int = 1024) -> dict[str, dict]:
    """``6 N D`` FLOPs, GPU-hours, days on ``num_gpus`` and cost of each :data:`PUBLISHED` model."""
    hardware = hardware or Hardware()
    out = {}
    for name, m in PUBLISHED.items():
        flops = 6 * m["params"] * m["tokens"]                                  # C ≈ 6 N D
        out[name] = {**m, **training_time(flops, hardware, num_gpus)}
    return out
