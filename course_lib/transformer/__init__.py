"""Chapter 4: the Transformer, built from chapter 3's attention and checked against Hugging Face.

Modules
-------
layers
    LayerNorm / RMSNorm / GELU / position-wise FFN, NumPy and PyTorch versions side by side.
blocks
    ``attend`` (chapter 3's attention or the fused kernel), ``KVCache``, pre-LN / post-LN encoder and
    decoder layers and the encoder-decoder ``Transformer`` of Vaswani et al. (equal to ``torch.nn.Transformer``).
bert
    ``BertConfig`` / ``BertModel``: BERT encoder, loads the offline MiniLM (``BertModel.from_pretrained``).
gpt
    ``GPT2Config`` / ``GPT2LMHeadModel``: GPT-2 causal language model.
llama
    ``LlamaConfig`` / ``LlamaForCausalLM``: RMSNorm, RoPE, SwiGLU, grouped-query attention;
    ``load_smollm2()`` runs the offline SmolLM2-135M (needs the optional gguf + accelerate packages).
roberta
    ``RobertaConfig`` / ``RobertaModel`` / ``RobertaForMaskedLM``: BERT with RoBERTa's position ids (offset by ``padding_idx``).
t5
    ``T5Config`` / ``T5ForConditionalGeneration``: relative position buckets, RMSNorm, ReLU or gated-GELU; ``greedy_generate``.
seq2seq
    ``Seq2SeqConfig`` / ``Seq2SeqTransformer``: encoder-decoder with embeddings, for translation-like tasks.
decoding
    greedy, temperature, top-k, top-p sampling (``generate``) and ``beam_search``.
loading
    ``load_hf_state_dict``: port a Hugging Face state dict, with clear errors.
training
    ``TrainConfig``, ``train``, ``evaluate``: AdamW (no decay on biases/LayerNorm), warm-up + cosine
    schedule, gradient clipping, token-weighted validation loss; ``causal_lm_loss``, ``seq2seq_loss``.
lm_data
    language-model data: byte-level BPE files, fixed-length blocks, shuffled batches, unigram baseline.
pinyin
    a real sequence-to-sequence task: HSK sentences -> numbered pinyin, baseline, metrics, cross-attention.
checkpoint
    save / load a model folder (safetensors + config JSON) with SHA-256 verification; ``checkpoint_path``.

Example
-------
>>> from course_lib import data
>>> from course_lib.transformer import BertModel
>>> model = BertModel.from_pretrained(data.minilm_path())          # doctest: +SKIP
"""
from . import blocks, checkpoint, decoding, layers, lm_data, loading, pinyin, roberta, seq2seq, t5, training
from .bert import BertConfig, BertModel
from .blocks import KVCache, Transformer, attend
from .decoding import beam_search, generate, sample_next_token, top_k_filter, top_p_filter
from .gpt import GPT2Config, GPT2LMHeadModel
from .layers import LayerNorm, RMSNorm
from .llama import LlamaConfig, LlamaForCausalLM, load_smollm2
from .loading import load_hf_state_dict
from .roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel
from .seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from .t5 import T5Config, T5ForConditionalGeneration, greedy_generate
from .training import TrainConfig, evaluate, train

__all__ = ["blocks", "checkpoint", "decoding", "layers", "lm_data", "loading", "pinyin", "roberta", "seq2seq", "t5",
           "training", "RobertaConfig", "RobertaModel", "RobertaForMaskedLM", "T5Config", "T5ForConditionalGeneration",
           "greedy_generate",
           "BertConfig", "BertModel", "GPT2Config", "GPT2LMHeadModel", "LlamaConfig", "LlamaForCausalLM",
           "load_smollm2", "Seq2SeqConfig", "Seq2SeqTransformer", "KVCache", "Transformer", "attend",
           "LayerNorm", "RMSNorm", "generate", "beam_search", "sample_next_token", "top_k_filter",
           "top_p_filter", "load_hf_state_dict", "TrainConfig", "train", "evaluate"]
