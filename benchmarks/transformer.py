"""Transformer benchmark: our BERT and GPT-2 against Hugging Face's, and the KV cache.

Run:  .venv/bin/python benchmarks/transformer.py            # full: BERT 32 x 128, GPT 4 x 256 d, 256 new tokens
      .venv/bin/python benchmarks/transformer.py --quick    # CI smoke run: small sizes
      .venv/bin/python benchmarks/transformer.py --device cuda

Every line compares two implementations on the same inputs, in the same process; timings are
interleaved (ours, theirs, ours, theirs, ...) and the best of ``--repeat`` runs is kept.
"ratio" = our throughput / theirs, so > 1 means ours is faster.

1. BERT inference (torch.inference_mode) on the offline MiniLM weights, WikiText-2 sentences
   tokenised with the MiniLM tokenizer and padded to the batch's longest (at most --bert-len)
   against ``transformers.BertModel(attn_implementation="eager")``.
2. GPT-2 training step (forward + backward + AdamW step), same config and initial weights as
   ``transformers.GPT2LMHeadModel`` (its default attention); tokens/s, and the model FLOPs
   utilisation MFU = (6 N + 12 L T D) tokens / s / peak, with N the parameters used in matmuls
   (position table excluded) and 12 L T D the attention scores and weighted sums (forward +
   backward, PaLM's convention); "peak" is a large float32 matmul timed in the same run.
3. Greedy generation of --new-tokens tokens with and without our KV cache (and HF's generate).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_lib import data  # noqa: E402
from course_lib.transformer import decoding  # noqa: E402
from course_lib.transformer.bert import BertModel  # noqa: E402
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel  # noqa: E402
from course_lib.transformer.loading import load_hf_state_dict  # noqa: E402


def interleaved(fns: dict, repeat: int, sync) -> dict:
    """Best wall time of each callable, run in turns after one warm-up each."""
    best = {name: float("inf") for name in fns}
    for name, fn in fns.items():
        fn(), sync()
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def matmul_peak(device, n: int, repeat: int, sync) -> float:
    """FLOP/s of an (n x n) @ (n x n) float32 matmul, best of ``repeat``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t = interleaved({"mm": lambda: a @ b}, repeat, sync)["mm"]
    return 2 * n ** 3 / t


def bench_bert(args, device, sync) -> dict:
    path = data.minilm_path()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    lines = [s.strip() for s in data.load_wikitext2("valid").split("\n") if len(s.split()) > 20]
    batch = tok(lines[:args.bert_batch], padding=True, truncation=True, max_length=args.bert_len,
                return_tensors="pt").to(device)
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").to(device).eval()
    ours = BertModel.from_pretrained(path).to(device).eval()
    with torch.inference_mode():
        diff = (ours(**batch).last_hidden_state - hf(**batch).last_hidden_state)[batch["attention_mask"].bool()]
        t = interleaved({"ours": lambda: ours(**batch), "hf": lambda: hf(**batch)}, args.repeat, sync)
    B, T = batch["input_ids"].shape
    return {"shape": (B, T), "ours": t["ours"], "hf": t["hf"], "max_abs_diff": diff.abs().max().item(),
            "tokens": B * T}


def gpt_pair(cfg: dict, device, seed: int = 0):
    torch.manual_seed(seed)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg)).to(device)
    ours = load_hf_state_dict(GPT2LMHeadModel(GPT2Config.from_dict(hf.config.to_dict())).to(device),
                              hf.state_dict())
    return ours, hf


def bench_gpt_train(args, device, sync, peak) -> dict:
    cfg = dict(vocab_size=args.vocab, n_positions=args.gpt_len, n_embd=args.gpt_width, n_layer=args.gpt_layers,
               n_head=args.gpt_heads, bos_token_id=0, eos_token_id=0)
    ours, hf = gpt_pair(cfg, device)
    ids = torch.randint(0, args.vocab, (args.gpt_batch, args.gpt_len), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    opts = {m: torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (ours, hf)}

    def step_ours():
        logits = ours(ids)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, args.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opts[ours].step(), opts[ours].zero_grad(set_to_none=True)

    def step_hf():
        hf(ids, labels=ids).loss.backward()
        opts[hf].step(), opts[hf].zero_grad(set_to_none=True)

    ours.train(), hf.train()
    t = interleaved({"ours": step_ours, "hf": step_hf}, args.repeat, sync)
    tokens = ids.numel()
    N = ours.num_parameters(non_embedding=True)
    flops = (6 * N + 12 * args.gpt_layers * args.gpt_len * args.gpt_width) * tokens
    return {"ours": t["ours"], "hf": t["hf"], "tokens": tokens, "N": N, "flops": flops,
            "mfu_ours": flops / t["ours"] / peak, "mfu_hf": flops / t["hf"] / peak}


def bench_generation(args, device, sync) -> dict:
    prompt = 16
    cfg = dict(vocab_size=args.vocab, n_positions=prompt + args.new_tokens, n_embd=args.gpt_width,
               n_layer=args.gpt_layers, n_head=args.gpt_heads, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    ours, hf = gpt_pair(cfg, device)
    ours.eval(), hf.eval()
    ids = torch.randint(1, args.vocab, (1, prompt), generator=torch.Generator().manual_seed(1)).to(device)
    out = {}
    fns = {"cache": lambda: out.__setitem__("cache", decoding.generate(ours, ids, args.new_tokens, use_cache=True)),
           "no cache": lambda: out.__setitem__("nocache", decoding.generate(ours, ids, args.new_tokens,
                                                                           use_cache=False)),
           "hf": lambda: out.__setitem__("hf", hf.generate(ids, attention_mask=torch.ones_like(ids),
                                                          max_new_tokens=args.new_tokens, do_sample=False,
                                                          eos_token_id=None, pad_token_id=0))}
    t = interleaved(fns, max(1, args.repeat // 2), sync)
    t["same_tokens"] = torch.equal(out["cache"], out["nocache"]) and torch.equal(out["cache"], out["hf"])
    return t


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, for CI")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--bert-batch", type=int, default=32)
    p.add_argument("--bert-len", type=int, default=128)
    p.add_argument("--gpt-batch", type=int, default=4)
    p.add_argument("--gpt-len", type=int, default=256)
    p.add_argument("--gpt-width", type=int, default=256)
    p.add_argument("--gpt-layers", type=int, default=4)
    p.add_argument("--gpt-heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--matmul", type=int, default=2048, help="size of the peak-FLOP/s matmul")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat, args.bert_batch, args.bert_len = 1, 4, 32
        args.gpt_batch, args.gpt_len, args.gpt_width, args.gpt_layers, args.vocab = 2, 32, 64, 2, 512
        args.new_tokens, args.matmul = 16, 256
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    print(f"# transformer benchmark: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"device {device}{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}, "
          f"threads {torch.get_num_threads()}, {platform.machine()}; float32, best of {args.repeat}, interleaved")
    peak = matmul_peak(device, args.matmul, args.repeat, sync)
    print(f"matmul peak ({args.matmul}^3 float32): {peak / 1e9:.1f} GFLOP/s")

    b = bench_bert(args, device, sync)
    ratio = b["hf"] / b["ours"]
    print(f"BERT inference MiniLM {b['shape'][0]}x{b['shape'][1]}: ours {b['tokens'] / b['ours']:.0f} tok/s, "
          f"HF eager {b['tokens'] / b['hf']:.0f} tok/s, ratio {ratio:.2f}x (target >= 0.9), "
          f"max|diff| real tokens {b['max_abs_diff']:.1e}")

    g = bench_gpt_train(args, device, sync, peak)
    ratio_g = g["hf"] / g["ours"]
    print(f"GPT train step (L={args.gpt_layers} D={args.gpt_width} V={args.vocab} B={args.gpt_batch} "
          f"T={args.gpt_len}, N={g['N'] / 1e6:.2f}M): ours {g['tokens'] / g['ours']:.0f} tok/s, "
          f"HF {g['tokens'] / g['hf']:.0f} tok/s, ratio {ratio_g:.2f}x (target >= 0.9); "
          f"MFU ours {100 * g['mfu_ours']:.1f}%, HF {100 * g['mfu_hf']:.1f}%")

    gen = bench_generation(args, device, sync)
    print(f"greedy generation, {args.new_tokens} new tokens after 16: ours with KV cache {gen['cache']:.2f} s, "
          f"without {gen['no cache']:.2f} s, speed-up {gen['no cache'] / gen['cache']:.1f}x; "
          f"HF generate {gen['hf']:.2f} s (ours/HF speed {gen['hf'] / gen['cache']:.2f}x); "
          f"identical tokens: {gen['same_tokens']}")
    return {"peak_flops": peak, "bert": b, "bert_ratio": ratio, "gpt_train": g, "gpt_ratio": ratio_g,
            "generation": gen}


if __name__ == "__main__":
    main()
