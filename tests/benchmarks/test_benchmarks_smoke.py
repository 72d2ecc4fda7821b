"""Each benchmark still runs (issue 17): a tiny run that must produce its figures, never judged by a number.

The admission benchmark against the real webhook, the bare handler and OPA (built by tools/build-opa.sh,
which ``make pytest`` runs), one short round each; the PATCH through a local API server with and without
the webhook, a few each; the auditor's benchmarks (full audit against kubectl diff, edit → healed, memory)
over 20 objects; then the report writer turns their JSON into the page ``make bench`` writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.opa_admission import find_opa
from driftwarden.settings import environment

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("rate", [0, 200])  # saturating, and at a steady rate
def test_the_admission_benchmark_and_its_report_produce_their_figures(tmp_path: Path, rate: int) -> None:
    find_opa(environment())  # FileNotFoundError, not a quiet pass, when OPA was not built
    modes = ["off", "bare", *(["opa"] if not rate else [])]
    results = tmp_path / "results"
    name = "admission-rate.json" if rate else "admission.json"  # the names make bench writes
    subprocess.run(
        [sys.executable, "-m", "benchmarks.admission_load", "--modes", ",".join(modes), "--rounds", "1",
         "--duration", "1", "--warmup", "0.3", "--connections", "2", "--rate", str(rate),
         "--json", str(results / name)],
        cwd=ROOT, check=True, timeout=240, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    report = json.loads((results / name).read_text())
    for mode in modes:
        figures = report["summary"][mode]
        assert figures["rps"] > 0 and figures["server_cpu_us_per_request"] > 0 and figures["errors"] == 0
    assert report["summary"]["off"]["cpu_vs_bare"] > 0
    page = tmp_path / "benchmarks.md"
    _report(results, page, tmp_path)
    text = page.read_text()
    assert "CPU per review" in text and "x bare" in text and "python -m benchmarks.admission_load" in text
    assert ("at a steady 200 reviews/s" in text) == bool(rate)


@pytest.mark.cluster
def test_the_patch_benchmark_produces_its_figures(tmp_path: Path) -> None:
    results = tmp_path / "results"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.apiserver_patch", "--patches", "5",
         "--json", str(results / "apiserver_patch.json")],
        cwd=ROOT, check=True, timeout=300, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    report = json.loads((results / "apiserver_patch.json").read_text())
    assert report["p50_ms"]["with"] > 0 and report["p50_ms"]["without"] > 0 and "added_p50_ms" in report
    assert report["p50_ms"]["bare"] > 0 and "bare_added_p50_ms" in report
    page = tmp_path / "benchmarks.md"
    _report(results, page, tmp_path)
    assert "what the webhook adds to a PATCH" in page.read_text() and "bare handler" in page.read_text()


FLEET = ["--objects", "20", "--apps", "2"]  # two Applications of ten ConfigMaps: tiny, still the real path


def _fleet_benchmark(tmp_path: Path, module: str, name: str, *extra: str) -> tuple[dict[str, Any], str]:
    """Run ``benchmarks.<module>`` over the tiny fleet; its one size's figures and the page written."""
    results = tmp_path / "results"
    subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *FLEET, *extra, "--json", str(results / name)],
        cwd=ROOT, check=True, timeout=300, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    [size] = json.loads((results / name).read_text())["sizes"]
    page = tmp_path / "benchmarks.md"
    _report(results, page, tmp_path)
    return size, page.read_text()


@pytest.mark.cluster
def test_the_full_audit_benchmark_produces_its_figures(tmp_path: Path) -> None:
    size, page = _fleet_benchmark(tmp_path, "full_audit", "full_audit.json", "--rounds", "1")
    assert size["compared"] == 20 and size["driftwarden_s"] > 0 and size["kubectl_diff_s"] > 0
    assert size["faster"] > 0 and size["cached_s"] > 0 and size["cpu_s"]["driftwarden"]["kube-apiserver"] >= 0
    assert "Full audit against `kubectl diff --server-side`" in page


@pytest.mark.cluster
def test_the_heal_benchmark_produces_its_figures(tmp_path: Path) -> None:
    size, page = _fleet_benchmark(tmp_path, "heal_latency", "heal.json", "--rate", "5", "--duration", "2")
    assert size["edits"] == 10 and size["healed"] > 0 and size["p50_ms"] > 0 and size["p99_ms"] > 0
    assert size["rss_after_mb"] > 0
    assert "Edit → healed at scale" in page


@pytest.mark.cluster
def test_the_memory_benchmark_produces_its_figures(tmp_path: Path) -> None:
    size, page = _fleet_benchmark(tmp_path, "auditor_memory", "memory.json", "--settle", "0")
    assert size["rss_mb"] > 0 and size["peak_rss_mb"] >= size["rss_mb"]
    assert "Auditor memory with many objects watched" in page


def _report(results: Path, page: Path, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "benchmarks.report", "--results", str(results), "--out", str(page),
         "--notes", str(tmp_path / "none.md")],
        cwd=ROOT, check=True, timeout=60, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_decision_time_benchmark_produces_a_figure_per_shape(tmp_path: Path) -> None:
    out = tmp_path / "decision_time.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.decision_time", "--runs", "1", "--json", str(out)],
        cwd=ROOT, check=True, timeout=240, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["target_ms"] == 100.0
    assert len(report["shapes"]) >= 13 and all(row["ms"] >= 0 for row in report["shapes"])
    assert all(row["reason"] != "internal-error" for row in report["shapes"])
