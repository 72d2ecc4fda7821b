"""Certificates on local disk, for ``driftwarden certs issue`` (demos, tests) and ``certs check --cert-file``.

File adapter of ``certs``: it reads and writes PEM files and raises ``ConfigError`` (chained) when it
cannot. Each file is written to a temporary name and renamed, so a webhook reloading its certificate never
reads half a file; private keys are created mode 0600. It must not decide anything about certificates.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from driftwarden.errors import ConfigError


def write_file(path: Path, *, data: bytes, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (0600 when ``private``, else 0644)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600 if private else 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def write_pairs(directory: Path, *, files: dict[str, bytes]) -> list[Path]:
    """Write ``name → PEM`` into ``directory``; names ending in ``.key`` are private. Keys go first, so a
    watcher that sees the new certificate also finds its key."""
    written = []
    for name in sorted(files, key=lambda n: not n.endswith(".key")):
        target = directory / name
        write_file(target, data=files[name], private=name.endswith(".key"))
        written.append(target)
    return written
