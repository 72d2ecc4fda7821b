"""Evaluate the jsonnet files of one directory source: the program ``auditor.source.renderers`` runs.

Run as ``python -m auditor.source.jsonnetrun`` with a JSON request on stdin (``root``, ``files``, ``libs``,
``ext_vars``, ``ext_codes``, ``tla_vars``, ``tla_codes``: absolute paths and string maps); prints a JSON
list with each file's output, in order, or exits 1 with jsonnet's error on stderr. A process of its own,
so that an evaluation that runs away can be stopped by the renderer's timeout (a thread cannot be) and
never holds up the event loop. Jsonnet is Google's C++ implementation (PyPI ``jsonnet``). Every import is
resolved inside the exported tree (``root``): an absolute import, or one that leads outside it through
``..`` or a symlink, is an error, so that Git cannot read the auditor's own files (its service account
token) into a manifest. This module imports nothing of driftwarden and must not touch the network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import _jsonnet


class ImportRefusedError(RuntimeError):
    """An import that names nothing inside the repository."""


def importer(root: Path, libs: list[Path]) -> Any:
    """The import callback: the importing file's directory first, then each library directory."""
    top = root.resolve()

    def load(base: str, rel: str) -> tuple[str, bytes]:
        if rel.startswith("/"):
            raise ImportRefusedError(f"import {rel!r}: absolute imports are not allowed; import inside Git")
        for directory in (Path(base), *libs):
            candidate = directory / rel
            resolved = candidate.resolve()
            if not resolved.is_relative_to(top):
                raise ImportRefusedError(f"import {rel!r} leads outside the repository")
            if resolved.is_file():
                return str(candidate), resolved.read_bytes()
        raise ImportRefusedError(f"import {rel!r}: no such file here or in the jsonnet library directories")

    return load


def evaluate(request: dict[str, Any]) -> list[Any]:
    root = Path(request["root"])
    load = importer(root, [Path(lib) for lib in request.get("libs", [])])
    outputs = []
    for file in request["files"]:
        text = _jsonnet.evaluate_file(
            file,
            ext_vars=request.get("ext_vars") or {},
            ext_codes=request.get("ext_codes") or {},
            tla_vars=request.get("tla_vars") or {},
            tla_codes=request.get("tla_codes") or {},
            import_callback=load,
        )
        outputs.append(json.loads(text))
    return outputs


def main() -> int:
    try:
        outputs = evaluate(json.load(sys.stdin))
    except RuntimeError as exc:
        print(str(exc).strip(), file=sys.stderr)
        return 1
    json.dump(outputs, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
