"""OPA beside driftwarden: the pinned OPA binary serving benchmarks/opa/admission.rego over HTTPS.

Benchmark only (benchmarks.admission_load's ``opa`` mode): tools/build-opa.sh builds OPA from the Go module
proxy into ``~/.cache/driftwarden/opa-<version>/`` (the version pinned in tools/opa/go.mod), and this module
finds it and starts ``opa run --server`` with the policy, telemetry off (no network), on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devtools.controlplane.processes import ManagedProcess
from driftwarden.settings import cache_root

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "benchmarks/opa/admission.rego"
GO_MOD = ROOT / "tools/opa/go.mod"
MODULE = "github.com/open-policy-agent/opa"


def opa_version() -> str:
    """The OPA version tools/opa/go.mod pins."""
    for line in GO_MOD.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == MODULE and parts[1].startswith("v"):
            return parts[1]
    raise RuntimeError(f"no {MODULE} version in {GO_MOD}")


def find_opa(env: Mapping[str, str]) -> Path:
    """The built ``opa`` binary; FileNotFoundError says how to build it (``make opa``)."""
    binary = cache_root(env) / f"opa-{opa_version()}" / "opa"
    if not binary.is_file():
        raise FileNotFoundError(f"{binary} is missing: run tools/build-opa.sh (make opa)")
    return binary


def opa_server(
    binary: Path, *, cert: Path, key: Path, port: int, log: Path, wrapper: tuple[str, ...] = ()
) -> ManagedProcess:
    """``opa run --server`` on 127.0.0.1:``port`` over TLS, answering POST / with the policy's decision."""
    return ManagedProcess("opa", [
        *wrapper, str(binary), "run", "--server", "--disable-telemetry", "--log-level", "error",
        "--addr", f"127.0.0.1:{port}", "--tls-cert-file", str(cert), "--tls-private-key-file", str(key),
        str(POLICY),
    ], log)  # fmt: skip
