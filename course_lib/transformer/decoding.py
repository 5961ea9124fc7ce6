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
"""
from __future__ import annotations

import torch


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Set every logit below the k-th largest to -inf (ties with the k-th are kept, as in HF).

    logits (..., V) -> (..., V).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    top_k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]                    # (..., 1) k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens with total probability >= top_p.

    logits (..., V) -> (..., V), the others set to -inf.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    sorted_logits, order = torch.sort(logits, descending=False, dim=-1)          # ascending
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)                           # P(tokens up to here)
    remove = cum <= (1.0 - top_p)                    # the unlikely tail, whose mass is <= 1 - p
    remove[..., -min_tokens_to_keep:] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def sample_next_token(logits: torch.Tensor, do_sample: bool = False, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose the next token of every row: logits (B, V) -> ids (B,).

    ``do_sample=False`` is greedy (argmax); otherwise divide by ``temperature``, apply top-k and
    top-p filters (in that order, as Hugging Face does) and sample with ``generator``.
    """
    if not do_sample:
        return logits.argmax(dim=-1)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}; use do_sample=False for greedy")
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


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, max_new_tokens: int, do_sample: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             eos_token_id: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None, return_logits: bool = False):
    """Extend every prompt by up to ``max_new_tokens`` tokens.

    Parameters
    ----------
    model : causal LM with our interface (see the module docstring)
    input_ids : LongTensor (B, T)
        Prompts of equal length (no padding).
    do_sample, temperature, top_k, top_p : see :func:`sample_next_token`.
    eos_token_id : int, optional
        A row that produced it keeps producing it; generation stops when every row has.
    use_cache : bool
        Use a KV cache (same tokens, fewer computations).
    generator : torch.Generator, optional
        For reproducible sampling.
    return_logits : bool
        Also return the logits that chose each new token, (B, new, V).

    Returns
    -------
    LongTensor (B, T + new) — prompt followed by the new tokens — and, if asked, the logits.
    """
    B, T = input_ids.shape
    _check_room(model, T, max_new_tokens)
    cache = model.new_cache(B, T + max_new_tokens) if use_cache else None
    seq, steps = input_ids, []
    done = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    logits = model(input_ids, cache)[:, -1]                                      # prefill: (B, V)
    for step in range(max_new_tokens):
        steps.append(logits)
        nxt = sample_next_token(logits, do_sample, temperature, top_k, top_p, generator)   # (B,)
        if eos_token_id is not None:
            nxt = nxt.masked_fill(done, eos_token_id)
            done |= nxt == eos_token_id
        seq = torch.cat([seq, nxt[:, None]], dim=1)                              # (B, T') -> (B, T' + 1)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        logits = (model(nxt[:, None], cache) if use_cache else model(seq))[:, -1]
    return (seq, torch.stack(steps, dim=1)) if return_logits else seq


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
    length_penalty : float
        :math:`\\alpha` in score = sum of log-probabilities / L^alpha (L = generated tokens).
    eos_token_id : int, optional
        A beam that emits it is finished.

    Returns
    -------
    tokens : LongTensor (1, T + L);  score : float
    """
    if input_ids.shape[0] != 1:
        raise ValueError(f"beam_search takes one prompt, input_ids of shape (1, T); got {tuple(input_ids.shape)}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    T = input_ids.shape[1]
    _check_room(model, T, max_new_tokens)
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
