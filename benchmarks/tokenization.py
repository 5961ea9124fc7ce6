"""Tokenisation benchmark: our pure-Python BPE / WordPiece vs Hugging Face `tokenizers` (Rust).

Run:  .venv/bin/python benchmarks/tokenization.py            # full: all of WikiText-2 train, vocab 30000
      .venv/bin/python benchmarks/tokenization.py --quick    # CI smoke run: 2000 lines, vocab 1000

Every line compares two implementations on the same text in the same process and
also checks that they agree (same merges / same ids).  Times are the best of
``--repeat`` runs; "ratio" = reference time / our time, so < 1 means ours is slower
(expected: ours is the readable teaching version in Python, theirs is Rust and
uses every core).  Training includes pre-tokenisation and word counting on both
sides.  Encoding runs over the WikiText-2 validation text (BPE) or the TREC
questions (WordPiece); "warm cache": both sides reuse the segmentation of words
seen in an earlier repeat (ours: a dict, theirs: the BPE model cache), "cold
cache": both caches are emptied before each run.  WordPiece has no cache on
either side.  "unspaced": one text without any space (base64, a long URL,
minified code, a run of letters; 100 kB each, 20 kB in quick mode), cold cache:
the case where re-scanning all pairs after every merge would be quadratic.
Encode lines also report throughput in characters per second.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_lib.data import load_trec, load_wikitext2, minilm_path  # noqa: E402
from course_lib.tokenization import BPEConfig, BPETokenizer, byte_level_alphabet  # noqa: E402
from course_lib.tokenization.reference import hf_merges, load_minilm_tokenizer, train_hf_bpe  # noqa: E402
from course_lib.tokenization.wordpiece import WordPieceTokenizer  # noqa: E402
from course_lib.utils import best_time, write_json  # noqa: E402


def unspaced_texts(n: int, seed: int = 0) -> dict[str, str]:
    """Texts of ``n`` characters without spaces: base64, a URL, minified code, a run of letters."""
    import base64
    import random
    r = random.Random(seed)
    return {"base64": base64.b64encode(r.randbytes(n))[:n].decode(),
            "url": ("https://example.org/" + "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789-_/.%?=&")
                                                      for _ in range(n)))[:n],
            "minified": ("function(a,b){return a.map(function(c){return c*b+1;});};var x=" * (n // 60 + 1))[:n],
            "letters": "".join(r.choice("etaoinshrdlu") for _ in range(n))}


def configs(vocab_size: int) -> dict[str, BPEConfig]:
    return {
        "whitespace": BPEConfig(vocab_size=vocab_size, min_frequency=2, special_tokens=["[UNK]", "[PAD]"],
                                unk_token="[UNK]"),
        "byte_level": BPEConfig(vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                pre_tokenizer="byte_level", initial_alphabet=byte_level_alphabet()),
    }


def line(task, ours, ref, agree, unit="s"):
    ratio = ref / ours
    print(f"{task:<36} {ours:>10.3f} {ref:>10.3f} {ratio:>7.3f}  {'yes' if agree else 'NO'}")
    return {"ours_seconds": ours, "reference_seconds": ref, "ratio": ratio, "agree": agree}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, for CI")
    p.add_argument("--lines", type=int, help="WikiText-2 train lines to train on (default: all)")
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    n_lines = args.lines or (2000 if args.quick else None)
    vocab_size = args.vocab_size or (1000 if args.quick else 30000)
    repeat = 1 if args.quick else args.repeat

    import tokenizers
    train = load_wikitext2("train").splitlines()[:n_lines]
    valid = load_wikitext2("valid").splitlines()[: (500 if args.quick else None)]
    trec = list(load_trec(None).text)[: (500 if args.quick else None)]
    mb = sum(len(t.encode()) + 1 for t in train) / 1e6
    unspaced = unspaced_texts(20_000 if args.quick else 100_000)
    n_chars = sum(map(len, valid))
    print(f"# tokenisation benchmark: tokenizers {tokenizers.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}, RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'default')}, "
          f"cpus {os.cpu_count()}")
    print(f"# BPE train: {len(train)} lines of WikiText-2 train ({mb:.1f} MB), vocab_size={vocab_size}, "
          f"min_frequency=2; encode: {len(valid)} valid lines")
    print(f"# encode sizes: BPE {n_chars / 1e6:.2f} M characters of text, WordPiece {len(trec)} questions; "
          f"unspaced: {', '.join(unspaced)}, {len(unspaced['url']) // 1000} k characters each")
    print(f"# ratio = tokenizers time / our time (< 1: ours slower); agree = identical merges / ids")
    print(f"{'task':<36} {'ours (s)':>10} {'tokenizers':>10} {'ratio':>7}  agree")
    report = {"config": {"lines": len(train), "megabytes": mb, "vocab_size": vocab_size}, "results": {}}
    for name, cfg in configs(vocab_size).items():
        trained = {}

        def ours_train():
            trained["ours"] = BPETokenizer(cfg).train(train)

        def ref_train():
            trained["ref"] = train_hf_bpe(train, cfg)

        t_ours, t_ref = best_time(ours_train, repeat=repeat, warmup=0), best_time(ref_train, repeat=repeat, warmup=0)
        ours, ref = trained["ours"], trained["ref"]
        same = ours.merges == hf_merges(ref) and ours.vocab == ref.get_vocab()
        report["results"][f"bpe_train/{name}"] = line(f"BPE train ({name})", t_ours, t_ref, same)

        for cache in ("warm", "cold"):
            out = {}

            def ours_encode():
                if cache == "cold":
                    ours._cache.clear()                 # every word segmented from scratch
                out["ours"] = [ours.encode(v) for v in valid]

            def ref_encode():
                if cache == "cold":
                    ref.model._clear_cache()
                out["ref"] = [e.ids for e in ref.encode_batch(valid)]

            t_ours, t_ref = best_time(ours_encode, repeat=repeat), best_time(ref_encode, repeat=repeat)
            n_tok = sum(map(len, out["ours"]))
            r = line(f"BPE encode ({name}, {cache} cache)", t_ours, t_ref, out["ours"] == out["ref"])
            r.update(tokens=n_tok, ours_tokens_per_s=n_tok / t_ours, reference_tokens_per_s=n_tok / t_ref,
                     characters=n_chars, ours_chars_per_s=n_chars / t_ours, reference_chars_per_s=n_chars / t_ref)
            report["results"][f"bpe_encode_{cache}/{name}"] = r

        out = {}

        def ours_unspaced():
            ours._cache.clear()
            out["ours"] = [ours.encode(t) for t in unspaced.values()]

        def ref_unspaced():
            ref.model._clear_cache()
            out["ref"] = [e.ids for e in ref.encode_batch(list(unspaced.values()))]

        t_ours, t_ref = best_time(ours_unspaced, repeat=repeat), best_time(ref_unspaced, repeat=repeat)
        n_tok, n_un = sum(map(len, out["ours"])), sum(map(len, unspaced.values()))
        r = line(f"BPE encode ({name}, unspaced)", t_ours, t_ref, out["ours"] == out["ref"])
        r.update(tokens=n_tok, characters=n_un, ours_chars_per_s=n_un / t_ours, reference_chars_per_s=n_un / t_ref)
        report["results"][f"bpe_encode_unspaced/{name}"] = r

    wp, hf = WordPieceTokenizer.from_pretrained(minilm_path()), load_minilm_tokenizer()
    out = {}
    t_ours = best_time(lambda: out.__setitem__("ours", [wp.encode(q) for q in trec]), repeat=repeat)
    t_ref = best_time(lambda: out.__setitem__("ref", hf(trec)["input_ids"]), repeat=repeat)
    n_tok = sum(map(len, out["ours"]))
    r = line("WordPiece encode (MiniLM)", t_ours, t_ref, out["ours"] == out["ref"])
    r.update(tokens=n_tok)
    report["results"]["wordpiece_encode"] = r
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
