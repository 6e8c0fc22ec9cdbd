"""Files hearth.toml names outside the data directory (TLS key, tunnel secret, SMTP password, …).

A restored server needs them as much as its database: they go into the
snapshot beside hearth.toml and come back to the same place, relative to the
config file, on restore, but only where no file is yet (nothing is overwritten).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..config import Config
from ..private import private_dir
from .snapshot import file_sha256

# The [section] keys whose value is a file to keep.
FILE_OPTIONS = (("front", "tls_cert"), ("front", "tls_key"), ("tunnel", "secret_file"), ("tunnel", "relay_ca"),
                ("dav", "smtp_password_file"), ("relay", "config"))
FOLDER = "files"


def named_files(config: Config) -> list[str]:
    """Each file hearth.toml names, as written there (relative to the config file, or absolute)."""
    names = [config.values[section][key] for section, key in FILE_OPTIONS if config.values[section][key]]
    names += [str(spec.env_file) for spec in config.services if spec.env_file]
    return list(dict.fromkeys(names))


def save_named_files(config: Config, snapshot: Path) -> list[dict[str, Any]]:
    """Copy every named file that exists into snapshot/files/; the manifest's list of them."""
    saved = []
    for index, name in enumerate(named_files(config)):
        source = config.resolve(name)
        if not source.is_file():
            continue
        stored = f"{FOLDER}/{index}"
        private_dir(snapshot / FOLDER)
        shutil.copyfile(source, snapshot / stored)
        os.chmod(snapshot / stored, 0o600)
        saved.append({"path": name, "stored": stored, "sha256": file_sha256(snapshot / stored)})
    return saved


def restore_named_files(config: Config, snapshot: Path, saved: list[dict[str, Any]]) -> tuple[list[Path], list[Path]]:
    """Put each saved file back where the config names it, unless a file is there: (restored, kept)."""
    restored, kept = [], []
    for entry in saved:
        target = config.resolve(entry["path"])
        if target.exists():
            kept.append(target)
            continue
        private_dir(target.parent)
        tmp = target.with_name(f".{target.name}.restoring")
        shutil.copyfile(snapshot / entry["stored"], tmp)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, target)  # never over a file that appeared meanwhile
        except FileExistsError:
            kept.append(target)
        else:
            restored.append(target)
        finally:
            tmp.unlink(missing_ok=True)
    return restored, kept
