"""Checkers of the "implement it" exercises: ``check_<name>(learner_fn)``.

Each checker runs the learner's function on hidden cases (edge cases included: a fully masked row,
T = 1, float16, an empty batch) and compares it with the course's own implementation, imported
from ``course_lib``. On success it prints what it checked and returns a :class:`CheckReport`; on
failure it raises :class:`ExerciseFailure` naming the case and giving a hint. A stub that still
raises ``NotImplementedError`` fails with "not implemented yet".

How a notebook uses a checker (the exercise cell pattern)::

    # Exercise 2 (★★): implement masked_softmax(scores, mask)       <- ordinary code cell
    def masked_softmax(scores, mask):
        raise NotImplementedError("exercise 2 of 03_attention/01_softmax")

    from course_lib.exercises import check_masked_softmax           <- ordinary code cell
    check_masked_softmax(masked_softmax)

and the solution, a code cell tagged ``["hide-cell", "solution"]`` starting ``# Solution to
exercise 2``, redefines the function and calls the checker again.

:data:`EXERCISES` lists every checker with its chapter and the course function it compares with.
"""
from __future__ import annotations

from dataclasses import dataclass

from .attention import check_attention_backward, check_masked_softmax
from .baselines import check_pagerank, check_rouge_n
from .challenges_data import check_focal_loss, check_pareto_front, check_patience_stop
from .compression import check_distillation_loss, check_magnitude_mask, check_quantize_absmax
from .core import CheckReport, ExerciseFailure
from .decoding import check_kv_cache_update, check_top_p_filter
from .efficiency_training import (check_accumulation_weights, check_combine_rank_gradients,
                                  check_fp16_underflow_count)
from .embeddings import check_keep_probs, check_negative_sampling_loss
from .interpretability import check_max_match, check_shapley_values
from .pretraining import check_lora_linear, check_mlm_mask


@dataclass(frozen=True)
class Exercise:
    """One implement-it exercise: its name, chapter, the learner's signature and the reference."""
    name: str
    chapter: int
    signature: str
    reference: str
    checker: object


EXERCISES: tuple[Exercise, ...] = (
    Exercise("rouge_n", 1, "rouge_n(hyp, ref, n) -> {precision, recall, fmeasure}",
             "course_lib.baselines.summarization.rouge_n", check_rouge_n),
    Exercise("pagerank", 1, "pagerank(weights, damping) -> scores (n,)",
             "course_lib.baselines.summarization.pagerank", check_pagerank),
    Exercise("keep_probs", 2, "keep_probs(counts, sample) -> keep (V,)",
             "course_lib.embeddings.vocab.Vocab.keep_probs", check_keep_probs),
    Exercise("negative_sampling_loss", 2,
             "sgns(w_in, w_out, centers, contexts, negatives) -> (loss, grad_v, targets, grad_u)",
             "course_lib.embeddings.word2vec_numpy.sgns_batch", check_negative_sampling_loss),
    Exercise("masked_softmax", 3, "masked_softmax(scores, mask) -> weights",
             "course_lib.attention.numpy_attention._masked_softmax", check_masked_softmax),
    Exercise("attention_backward", 3, "backward(grad_out, q, k, v, weights, scale=None) -> (dq, dk, dv)",
             "course_lib.attention.numpy_attention.scaled_dot_product_attention_backward",
             check_attention_backward),
    Exercise("top_p_filter", 4, "top_p_filter(logits, top_p) -> logits",
             "course_lib.transformer.decoding.top_p_filter", check_top_p_filter),
    Exercise("kv_cache_update", 4, "update(cache, layer_idx, k, v) -> (keys, values)",
             "course_lib.transformer.blocks.KVCache.update", check_kv_cache_update),
    Exercise("lora_linear", 5, "LoraLinear(base_layer, r, lora_alpha) -> nn.Module",
             "course_lib.finetuning.lora.LoraLinear", check_lora_linear),
    Exercise("mlm_mask", 5,
             "mask_tokens(input_ids, *, vocab_size, mask_token_id, special_ids, mlm_probability, generator)",
             "course_lib.pretraining.masking.mask_tokens", check_mlm_mask),
    Exercise("fp16_underflow_count", 6, "count(grad, scale) -> int",
             "course_lib.efficiency.precision.fp16_cast_underflow", check_fp16_underflow_count),
    Exercise("accumulation_weights", 6, "weights(token_counts) -> list[float]",
             "course_lib.efficiency.accumulation.accumulation_weights", check_accumulation_weights),
    Exercise("combine_rank_gradients", 6, "combine(grads, token_counts) -> dict",
             "course_lib.efficiency.ddp.combine_rank_gradients", check_combine_rank_gradients),
    Exercise("quantize_absmax", 6, "quantize(w) -> (q, scale)",
             "course_lib.efficiency.quantization.quantize_per_channel", check_quantize_absmax),
    Exercise("magnitude_mask", 6, "mask(weight, amount) -> mask",
             "course_lib.efficiency.pruning.magnitude_mask", check_magnitude_mask),
    Exercise("distillation_loss", 6, "loss(student_logits, teacher_logits, labels, temperature, alpha)",
             "course_lib.efficiency.distillation.distillation_loss", check_distillation_loss),
    Exercise("focal_loss", 6, "focal_loss(logits, labels, gamma, alpha) -> loss",
             "course_lib.challenges.imbalance.focal_loss", check_focal_loss),
    Exercise("patience_stop", 6, "stop(valid_losses, patience) -> (best_epoch, stop_epoch)",
             "course_lib.challenges.overfitting.patience_stop", check_patience_stop),
    Exercise("pareto_front", 6, "front(rows) -> names",
             "course_lib.challenges.model_choice.pareto_front", check_pareto_front),
    Exercise("shapley_values", 6, "shapley(value_fn, num_features) -> phi (M,)",
             "course_lib.challenges.perturbation.exact_shapley", check_shapley_values),
    Exercise("max_match", 6, "max_match(text, vocab, max_len) -> list of str",
             "course_lib.challenges.chinese.max_match", check_max_match),
)

__all__ = ["CheckReport", "ExerciseFailure", "EXERCISES", "Exercise",
           "check_keep_probs", "check_negative_sampling_loss", "check_masked_softmax",
           "check_attention_backward", "check_top_p_filter", "check_kv_cache_update",
           "check_lora_linear", "check_mlm_mask", "check_rouge_n", "check_pagerank",
           "check_fp16_underflow_count", "check_accumulation_weights", "check_combine_rank_gradients",
           "check_quantize_absmax", "check_magnitude_mask", "check_distillation_loss", "check_focal_loss",
           "check_patience_stop", "check_pareto_front", "check_shapley_values", "check_max_match"]
