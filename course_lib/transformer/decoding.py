r"""Turning next-token logits into text: greedy, temperature, top-k, top-p and beam search.

A causal language model gives logits :math:`z \in \mathbb{R}^V` for the next token. Decoding
rules (解码策略) choose one:

* **greedy**: :math:`\arg\max_i z_i`; deterministic, often repetitive.
* **temperature** :math:`\tau`: sample from :math:`\mathrm{softmax}(z / \tau)`; :math:`\tau < 1`
  sharpens the distribution, :math:`\tau > 1` flattens it, :math:`\tau \to 0` is greedy.
* **top-k** (Fan et al., 2018): sample among the k largest logits only.
* **top-p / nucleus** (Holtzman et al., 2020): sample among the smallest set of tokens whose
  probabilities sum to at least p.
* **beam search**: keep the ``num_beams`` prefixes with the highest total log-probability
  :math:`\sum_t \log p(y_t \mid y_{<t})`. Because every extra token adds a negative log-probability,
  short hypotheses are favoured; finished hypotheses are therefore ranked by the **length
  penalty** score :math:`\frac{1}{L^{\alpha}} \sum_{t=1}^{L} \log p(y_t \mid y_{<t})` with L the
  number of generated tokens (the end-of-sequence token included) and :math:`\alpha` =
  ``length_penalty`` (Hugging Face's convention: :math:`\alpha > 0` favours longer outputs,
  :math:`\alpha < 0` shorter ones, 0 is the raw sum).

Any model works that follows our causal-LM interface: ``model(input_ids, cache=None)`` returns
logits (B, T, V), ``model.new_cache(batch_size, max_length)`` gives a
:class:`~course_lib.transformer.blocks.KVCache`, and ``model.context_length`` is the context.
With ``use_cache=True`` the prompt is run once (prefill) and each step feeds one token.

**Batches of prompts of different lengths** are padded on the *left* (the new tokens then follow
the last real token of every row) and passed with their ``attention_mask``; :func:`generate` then
calls ``model(ids, cache, attention_mask=..., position_ids=...)`` with Hugging Face's rules: the
mask hides the pads from every query, positions count real tokens only
(:math:`p_t = \sum_{s \le t} m_s - 1`, pads at 0), and each new token gets a 1 in the mask and the
position after the last. A prompt's tokens are then the same alone or in a padded batch (tested).
"""
from __future__ import annotations

import torch

from ..attention.checks import check_int, check_number
from .blocks import check_ids, check_mask


def _check_logits(logits) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TypeError(f"logits must be a floating-point tensor (..., V), got {got}")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a vocabulary axis of size V >= 1, got shape {tuple(logits.shape)}")


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Set every logit below the k-th largest to -inf (ties with the k-th are kept, as in HF).

    logits (..., V) -> (..., V).
    """
    _check_logits(logits)
    top_k = check_int("top_k", top_k, minimum=1)
    top_k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]                    # (..., 1) k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens with total probability >= top_p.

    logits (..., V) -> (..., V), the others set to -inf.
    """
    _check_logits(logits)
    _check_top_p(top_p)
    min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, minimum=1)
    sorted_logits, order = torch.sort(logits, descending=False, dim=-1)          # ascending
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)                           # P(tokens up to here)
    remove = cum <= (1.0 - top_p)                    # the unlikely tail, whose mass is <= 1 - p
    remove[..., -min_tokens_to_keep:] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def _check_top_p(top_p) -> float:
    top_p = check_number("top_p", top_p)
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}; 1.0 keeps every token")
    return top_p


def _check_sampling(do_sample, temperature, top_k, top_p, generator) -> None:
    """Validate the sampling arguments, also when ``do_sample=False`` ignores them."""
    if not isinstance(do_sample, bool):
        raise TypeError(f"do_sample must be True or False, got {do_sample!r}")
    temperature = check_number("temperature", temperature)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}; use do_sample=False "
                         "for greedy decoding (the limit temperature -> 0)")
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
    if top_p is not None:
        _check_top_p(top_p)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
                        "e.g. torch.Generator().manual_seed(0)")


def sample_next_token(logits: torch.Tensor, do_sample: bool = False, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose the next token of every row: logits (B, V) -> ids (B,).

    ``do_sample=False`` is greedy (argmax); otherwise divide by ``temperature``, apply top-k and
    top-p filters (in that order, as Hugging Face does) and sample with ``generator``. The sampling
    arguments are validated in both cases, so a typo never hides behind ``do_sample=False``.
    """
    _check_logits(logits)
    _check_sampling(do_sample, temperature, top_k, top_p, generator)
    if not do_sample:
        return logits.argmax(dim=-1)
    logits = logits / temperature                                                # softmax(z / tau)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = logits.float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _check_room(model, T: int, max_new_tokens: int) -> None:
    if T + max_new_tokens > model.context_length:
        raise ValueError(f"prompt of {T} tokens + max_new_tokens={max_new_tokens} exceeds the model's "
                         f"context of {model.context_length} tokens; shorten the prompt or generate fewer tokens")


def _check_eos(model, eos_token_id) -> None:
    if eos_token_id is None:
        return
    eos_token_id = check_int("eos_token_id", eos_token_id, minimum=0)
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab_size is not None and eos_token_id >= vocab_size:
        raise ValueError(f"eos_token_id={eos_token_id} is not in the model's vocabulary [0, {vocab_size})")


def _prompt_positions(attention_mask: torch.Tensor, B: int, T: int) -> torch.Tensor:
    """Validate a left-padded prompt mask (one sync) and return Hugging Face's position ids (B, T)."""
    check_mask("attention_mask", attention_mask, (B, T), "(B, T) like input_ids")
    m = attention_mask if attention_mask.dtype == torch.bool else attention_mask.float()
    flags = torch.stack([((m != 0) & (m != 1)).any(), ~(m != 0).any(-1).all(), (m[:, -1] == 0).any()]).tolist()
    if flags[0]:
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token)")
    if flags[1]:
        raise ValueError("a row of attention_mask is all padding; every prompt needs at least one real token")
    if flags[2]:
        raise ValueError("a prompt ends with padding: pad prompts on the left for generation "
                         "(tokenizer.padding_side = 'left'), so that every row continues from a real token")
    mask = attention_mask.long()
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)          # HF: cumsum(mask) - 1, pads at 0


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, max_new_tokens: int, do_sample: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             eos_token_id: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None, return_logits: bool = False,
             attention_mask: torch.Tensor | None = None):
    """Extend every prompt by up to ``max_new_tokens`` tokens.

    Parameters
    ----------
    model : causal LM with our interface (see the module docstring)
    input_ids : LongTensor (B, T)
        Prompts; of different lengths, padded on the left and described by ``attention_mask``.
    max_new_tokens : int
        >= 0; with 0 the prompt is returned unchanged (and an empty (B, 0, V) logits tensor).
    do_sample, temperature, top_k, top_p : see :func:`sample_next_token` (validated even when greedy).
    eos_token_id : int, optional
        A row that produced it keeps producing it; generation stops when every row has.
    use_cache : bool
        Use a KV cache (same tokens, fewer computations).
    generator : torch.Generator, optional
        For reproducible sampling.
    return_logits : bool
        Also return the logits that chose each new token, (B, new, V).
    attention_mask : Tensor (B, T), optional
        1 real token, 0 left padding. As Hugging Face's ``generate`` does, positions are
        ``cumsum(mask) - 1`` (pads 0), the new tokens continue from the last one, and the mask is
        extended with ones; the model must then accept ``attention_mask`` and ``position_ids``.

    Returns
    -------
    LongTensor (B, T + new) — prompt followed by the new tokens — and, if asked, the logits.
    """
    B, T = check_ids("input_ids", input_ids)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    _check_sampling(do_sample, temperature, top_k, top_p, generator)
    _check_eos(model, eos_token_id)
    _check_room(model, T, max_new_tokens)
    mask = positions = None
    if attention_mask is not None:
        mask, positions = attention_mask, _prompt_positions(attention_mask, B, T)
    cache = model.new_cache(B, T + max_new_tokens) if use_cache and max_new_tokens else None

    def next_logits(ids, pos):                   # the model's logits at the last position, (B, V)
        if mask is None:
            return model(ids, cache)[:, -1]
        return model(ids, cache, attention_mask=mask, position_ids=pos)[:, -1]

    seq, steps = input_ids, []
    done = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    logits = next_logits(input_ids, positions)                                   # prefill: (B, V)
    for step in range(max_new_tokens):
        steps.append(logits)
        nxt = sample_next_token(logits, do_sample, temperature, top_k, top_p, generator)   # (B,)
        if eos_token_id is not None:
            nxt = nxt.masked_fill(done, eos_token_id)
            done |= nxt == eos_token_id
        seq = torch.cat([seq, nxt[:, None]], dim=1)                              # (B, T') -> (B, T' + 1)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)                 # the new token is real
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)     # one after the last
        if use_cache:
            logits = next_logits(nxt[:, None], None if positions is None else positions[:, -1:])
        else:
            logits = next_logits(seq, positions)
    if not return_logits:
        return seq
    return seq, (torch.stack(steps, dim=1) if steps else logits.new_zeros(B, 0, logits.shape[-1]))


@torch.no_grad()
def beam_search(model, input_ids: torch.Tensor, num_beams: int, max_new_tokens: int,
                length_penalty: float = 1.0, eos_token_id: int | None = None, use_cache: bool = True):
    """Beam search for one prompt; returns the best sequence and its length-penalised score.

    Parameters
    ----------
    model : causal LM with our interface
    input_ids : LongTensor (1, T)
    num_beams : int
        Number of prefixes kept at each step (1 = greedy).
    max_new_tokens : int
        >= 0; with 0 the prompt itself is returned with score 0.0 (no token, no log-probability).
    length_penalty : float
        :math:`\\alpha` in score = sum of log-probabilities / L^alpha (L = generated tokens).
    eos_token_id : int, optional
        A beam that emits it is finished.

    Returns
    -------
    tokens : LongTensor (1, T + L);  score : float
    """
    B, T = check_ids("input_ids", input_ids)
    if B != 1:
        raise ValueError(f"beam_search takes one prompt, input_ids of shape (1, T); got {tuple(input_ids.shape)}"
                         "; loop over the prompts")
    num_beams = check_int("num_beams", num_beams, minimum=1)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    length_penalty = check_number("length_penalty", length_penalty)
    _check_eos(model, eos_token_id)
    _check_room(model, T, max_new_tokens)
    if max_new_tokens == 0:
        return input_ids.clone(), 0.0
    beams = input_ids.repeat(num_beams, 1)                                       # (K, T)
    scores = torch.full((num_beams,), float("-inf"), device=input_ids.device)
    scores[0] = 0.0                    # all beams start equal: expand only the first at step 1
    cache = model.new_cache(num_beams, T + max_new_tokens) if use_cache else None
    logits = model(beams, cache)[:, -1]                                          # (K, V)
    finished: list[tuple[float, torch.Tensor]] = []
    for step in range(1, max_new_tokens + 1):
        logp = logits.float().log_softmax(dim=-1)                                # log p(y_t | y_<t)
        V = logp.shape[-1]
        cand = (scores[:, None] + logp).view(-1)                                 # (K * V,) total log-prob
        top_scores, top_idx = cand.topk(2 * num_beams)       # 2K: enough to refill K after EOS
        keep_beam, keep_tok, keep_score = [], [], []
        for rank, (s, idx) in enumerate(zip(top_scores.tolist(), top_idx.tolist())):
            beam, tok = divmod(idx, V)
            if eos_token_id is not None and tok == eos_token_id:
                if rank < num_beams:                        # a finished hypothesis, ranked by s / L^alpha
                    finished.append((s / step ** length_penalty,
                                     torch.cat([beams[beam], beams.new_tensor([tok])])))
                continue
            keep_beam.append(beam), keep_tok.append(tok), keep_score.append(s)
            if len(keep_beam) == num_beams:
                break
        index = torch.tensor(keep_beam, device=beams.device)
        tokens = torch.tensor(keep_tok, device=beams.device)
        beams = torch.cat([beams[index], tokens[:, None]], dim=1)                # (K, T') -> (K, T' + 1)
        scores = torch.tensor(keep_score, device=beams.device)
        finished.sort(key=lambda f: -f[0])
        finished = finished[:num_beams]
        best_running = scores.max().item() / step ** length_penalty
        if len(finished) == num_beams and finished[-1][0] >= best_running:
            break                                           # no running beam can overtake (HF's heuristic)
        if step == max_new_tokens:
            break
        if use_cache:
            cache.reorder(index)                            # each kept beam continues its parent's cache
            logits = model(tokens[:, None], cache)[:, -1]
        else:
            logits = model(beams)[:, -1]
    L = beams.shape[1] - T
    finished += [(s / L ** length_penalty, b) for s, b in zip(scores.tolist(), beams)]
    score, best = max(finished, key=lambda f: f[0])
    return best[None], score
