"""Input checks shared by the tokenisers: a wrong argument fails *here*, with a message saying what to pass.

Python would otherwise fail late and obscurely (``'NoneType' object is not iterable`` deep
inside training, a tensor id "unknown" because ``tensor(5) != 5`` as a dict key), so every
public function of :mod:`course_lib.tokenization` calls one of these first.

- ``TypeError``: the argument has the wrong type (a list where a str is expected, a float id);
- ``ValueError``: the type is right but the value is not allowed (``vocab_size=0``, id 10**6).
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["check_text", "check_texts", "check_int", "check_bool", "check_token", "check_token_list",
           "check_word_counts", "as_id_list"]


def _name(x) -> str:
    return type(x).__name__


def check_text(text, where: str) -> str:
    """``text`` must be one ``str`` (possibly empty)."""
    if not isinstance(text, str):
        hint = "; for several texts call it once per text" if isinstance(text, (list, tuple)) else ""
        raise TypeError(f"{where} takes a str, got {_name(text)}{hint}")
    return text


def check_texts(texts, where: str) -> Iterator[str]:
    """``texts`` must be an iterable of ``str`` (list, tuple, generator, ...), not one ``str``.

    Returns an iterator that checks every item as it is consumed, so generators stay lazy.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{where} takes an iterable of texts (e.g. text.splitlines()), not one "
                        f"{_name(texts)}; wrap a single text in a list: [text]")
    if isinstance(texts, Mapping) or not isinstance(texts, Iterable):
        raise TypeError(f"{where} takes an iterable of str (e.g. a list of lines), got {_name(texts)}")

    def checked() -> Iterator[str]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{where}: every text must be a str, but item {i} is {_name(text)}; "
                                f"convert it with str() or drop it")
            yield text
    return checked()


def check_int(value, name: str, minimum: int | None = None, allow_none: bool = False) -> int | None:
    """``value`` must be an ``int`` (not a bool or float), at least ``minimum``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        none = " or None" if allow_none else ""
        raise TypeError(f"{name} must be an int{none}, got {_name(value)} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_name(value)} {value!r}")
    return value


def check_token(value, name: str, allow_none: bool = False) -> str | None:
    """A token string: a non-empty ``str`` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str{' or None' if allow_none else ''}, got {_name(value)}")
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def check_token_list(values, name: str) -> list[str]:
    """A list (or tuple) of non-empty ``str`` tokens."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of str, got {_name(values)}"
                        + (f"; write [{values!r}]" if isinstance(values, str) else ""))
    for i, v in enumerate(values):
        check_token(v, f"{name}[{i}]")
    return list(values)


def check_word_counts(word_counts, where: str) -> Mapping:
    """A mapping ``{word (str): count (int >= 1)}``, as returned by ``count_words``."""
    if not isinstance(word_counts, Mapping):
        raise TypeError(f"{where} takes a mapping {{word: count}} (see count_words), got {_name(word_counts)}")
    for word, n in word_counts.items():
        if not isinstance(word, str):
            raise TypeError(f"{where}: words must be str, got key {word!r} of type {_name(word)}")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{where}: counts must be int, got {n!r} for word {word!r}")
        if n < 1:
            raise ValueError(f"{where}: counts must be >= 1, got {n} for word {word!r}; drop that word")
    return word_counts


def as_id_list(ids, n_ids: int, valid, where: str) -> list[int]:
    """Token ids from a list / tuple / NumPy array / torch tensor of integers -> a list of int.

    ``valid(i)`` says whether ``i`` is an id of the vocabulary.  Floats, bools, strings and
    nested sequences are refused with a message that says how to convert them.
    """
    if ids is None or isinstance(ids, (str, bytes, bytearray, Mapping)):
        raise TypeError(f"{where} takes a sequence of int token ids (list, NumPy array, torch tensor), "
                        f"got {_name(ids)}")
    kind = _name(ids)
    if hasattr(ids, "tolist") and hasattr(ids, "dtype"):      # NumPy array or torch tensor
        dtype = str(ids.dtype)
        if tuple(getattr(ids, "shape", ())) == (0,):            # torch.tensor([]) is float32: still no ids
            return []
        if "int" not in dtype or "bool" in dtype:
            raise TypeError(f"{where} needs integer token ids, got a {kind} of dtype {dtype}; "
                            f"convert it with .long() (torch) or .astype(int) (NumPy) if the values are ids")
        shape = tuple(getattr(ids, "shape", ()))
        if len(shape) != 1:
            raise ValueError(f"{where} takes one 1-D sequence of ids, got a {kind} of shape {shape}; "
                             f"decode each row of a batch separately")
        ids = ids.tolist()
    elif not isinstance(ids, Iterable):
        raise TypeError(f"{where} takes a sequence of int token ids, got {kind}")
    out = []
    for pos, i in enumerate(ids):
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            if hasattr(i, "item") and getattr(i, "ndim", 1) == 0 and "int" in str(getattr(i, "dtype", "")):
                i = i.item()                                   # a 0-d integer tensor / array element
            else:
                hint = ("; decode each row of a batch separately" if isinstance(i, (list, tuple))
                        else "; ids must be whole numbers, e.g. int(x)")
                raise TypeError(f"{where} needs integer token ids, got {_name(i)} {i!r} at position {pos}{hint}")
        out.append(int(i))
    bad = [i for i in out if not valid(i)]
    if bad:
        raise ValueError(f"unknown token ids {bad[:5]} in {where}: valid ids are those of the vocabulary "
                         f"({n_ids} tokens, ids 0..{n_ids - 1} when contiguous)")
    return out
