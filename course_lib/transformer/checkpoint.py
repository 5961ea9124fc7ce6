"""Save and load small trained models as a folder: safetensors weights, config JSON, SHA-256 sums.

A checkpoint folder (e.g. ``checkpoints/tiny_gpt`` at the top of the course repository) holds

``model.safetensors``   the weights (``safetensors``: a flat, memory-mappable tensor file, no pickle);
``config.json``         the model's dataclass config, so ``Config(**json)`` rebuilds the architecture;
anything else           tokenizer files, the training history, ...;
``checksums.json``      the SHA-256 of every other file (``README.md`` excepted).

:func:`verify_checkpoint` recomputes the digests and raises :class:`~course_lib.data.ChecksumError`
naming the altered file, so a damaged or edited checkpoint never loads silently.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..data import ChecksumError

__all__ = ["CHECKPOINTS", "checkpoint_path", "sha256_file", "save_model", "load_model", "write_checksums", "write_readme",
           "verify_checkpoint", "verify_files"]

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"      # <repo>/checkpoints
_UNCHECKED = ("README.md", "checksums.json")


def checkpoint_path(name: str) -> Path:
    """Folder of a checkpoint shipped with the course, ``<repo>/checkpoints/<name>``."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"a checkpoint name is a folder name such as 'tiny_gpt', got {name!r}")
    path = CHECKPOINTS / name
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint {name!r} in the course's checkpoints/ folder; "
                                f"see checkpoints/README.md for the command that trains it")
    return path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unique_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict without the names that share storage with an earlier one (tied weights)."""
    seen, out = set(), {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.shape)
        if key not in seen:
            seen.add(key)
            out[name] = t.detach().contiguous().cpu()
    return out


def _folder(folder) -> Path:
    if not isinstance(folder, (str, Path)):
        raise TypeError(f"folder must be a str or pathlib.Path, got {type(folder).__name__}")
    return Path(folder)


def _checkpoint_folder(folder) -> Path:
    folder = _folder(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no checkpoint at {folder}: the folder does not exist; check the path, or use "
                                "checkpoint_path(name) for a checkpoint shipped with the course")
    return folder


def save_model(model: nn.Module, folder: str | Path, model_type: str) -> list[Path]:
    """Write ``model.safetensors`` and ``config.json`` (``model.config`` must be a dataclass)."""
    if not isinstance(model, nn.Module) or not is_dataclass(getattr(model, "config", None)):
        raise TypeError(f"save_model needs one of our models (an nn.Module whose .config is a dataclass), "
                        f"got {type(model).__name__}")
    if not isinstance(model_type, str) or not model_type:
        raise ValueError(f"model_type must be a non-empty name such as 'gpt2', got {model_type!r}")
    folder = _folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_unique_state_dict(model), folder / "model.safetensors")
    config = {"model_type": model_type, **asdict(model.config)}
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return [folder / "model.safetensors", folder / "config.json"]


def load_model(folder: str | Path, model_cls, config_cls, verify: bool = True) -> nn.Module:
    """Rebuild ``model_cls(config_cls(**config.json))`` and load ``model.safetensors`` (eval mode, CPU).

    With ``verify`` (default) the folder's checksums are checked first. Only tied weights may be
    absent from the file; any other missing or unexpected tensor raises a ``ValueError``.
    """
    folder = _checkpoint_folder(folder)
    if not is_dataclass(config_cls):
        raise TypeError(f"config_cls must be a config dataclass such as GPT2Config, got {config_cls!r}")
    if verify:
        verify_checkpoint(folder)
    for need in ("config.json", "model.safetensors"):
        if not (folder / need).is_file():
            raise FileNotFoundError(f"no checkpoint at {folder}: {need} is missing; write it with save_model()")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.pop("model_type", None)
    unknown = sorted(set(config) - {f.name for f in fields(config_cls)})
    if unknown:
        raise ValueError(f"{folder.name}/config.json has keys that {config_cls.__name__} does not know: {unknown}; "
                         f"is this a checkpoint of another model class? Otherwise delete those keys "
                         f"(known: {sorted(f.name for f in fields(config_cls))})")
    model = model_cls(config_cls(**config))
    state = load_file(folder / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(model.state_dict()) - set(_unique_state_dict(model))
    if set(missing) - tied or unexpected:
        raise ValueError(f"{folder.name}/model.safetensors does not fit {model_cls.__name__}: "
                         f"missing {sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")
    return model.eval()


def write_checksums(folder: str | Path) -> dict[str, str]:
    """Record the SHA-256 of every file in ``folder`` (README.md excepted) in ``checksums.json``."""
    folder = _checkpoint_folder(folder)
    sums = {p.name: sha256_file(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.name not in _UNCHECKED}
    (folder / "checksums.json").write_text(json.dumps(sums, indent=1) + "\n", encoding="utf-8")
    return sums


def write_readme(folder: str | Path, lines: list[str], sums: dict[str, str], after: list[str] = ()) -> None:
    """Write ``README.md``: ``lines``, the checkpoint's size, its SHA-256 list, then ``after``."""
    folder = _checkpoint_folder(folder)
    size = sum((folder / n).stat().st_size for n in sums) / 1e6
    text = [*lines, f"- files: {size:.1f} MB in total", "",
            "## SHA-256 (also in `checksums.json`, verified by `course_lib.transformer.checkpoint.verify_checkpoint`)",
            "", "```", *[f"{h}  {n}" for n, h in sums.items()], "```", "", *after]
    (folder / "README.md").write_text("\n".join(text), encoding="utf-8")


def verify_checkpoint(folder: str | Path) -> dict[str, str]:
    """Check every file listed in ``checksums.json``; returns the digests.

    Raises
    ------
    FileNotFoundError
        ``checksums.json`` or a listed file is missing.
    ChecksumError
        A file's SHA-256 differs from the recorded one (the message names the file and both digests).
    """
    folder = _checkpoint_folder(folder)
    sums = _read_checksums(folder)
    verify_files(folder, list(sums), sums)
    return sums


def _read_checksums(folder: Path) -> dict[str, str]:
    listing = folder / "checksums.json"
    if not listing.exists():
        raise FileNotFoundError(f"{folder.name}/checksums.json is missing: cannot verify this checkpoint; "
                                "record the digests with write_checksums(folder) or pass verify=False")
    return json.loads(listing.read_text(encoding="utf-8"))


def verify_files(folder: str | Path, names: list[str], sums: dict[str, str] | None = None) -> None:
    """Check the SHA-256 of the files ``names`` of a checkpoint folder against its ``checksums.json``.

    Raises ``FileNotFoundError`` (missing folder, listing or file), ``ChecksumError`` (a file not
    listed, or altered).
    """
    folder = _checkpoint_folder(folder)
    sums = _read_checksums(folder) if sums is None else sums
    for name in names:
        if name not in sums:
            raise ChecksumError(f"{folder.name}/checksums.json does not list {name}, so it cannot be verified; "
                                "run write_checksums(folder) after writing every file")
        expected = sums[name]
        path = folder / name
        if not path.exists():
            raise FileNotFoundError(f"checkpoint file {folder.name}/{name} is missing")
        got = sha256_file(path)
        if got != expected:
            raise ChecksumError(f"checkpoint file {folder.name}/{name} was altered: SHA-256 {got[:16]}... "
                                f"differs from the recorded {expected[:16]}...; restore it with "
                                f"`git checkout -- checkpoints/{folder.name}` or retrain it with the command "
                                f"in checkpoints/{folder.name}/README.md")
