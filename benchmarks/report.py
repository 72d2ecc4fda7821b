"""Write docs/benchmarks.md from the raw results of ``make bench`` (benchmarks/results/*.json).

Benchmark tooling only: reads the JSON each benchmark wrote, the machine (/proc/cpuinfo, /proc/meminfo) and
the pinned versions, and writes one Markdown page: figures, ratios, and the command reproducing each. It
never judges a number; the targets are printed beside the figures so a reader sees how far each is.

    python -m benchmarks.report [--results benchmarks/results] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from benchmarks.opa_admission import opa_version

ROOT = Path(__file__).resolve().parents[1]
ADMISSION_COMMAND = (
    "python -m benchmarks.admission_load --modes base,off,off-aio,on,bare,bare-uv,opa --pin --baseline DIR "
    "--json benchmarks/results/admission.json"
)
LABELS = {
    "off": "driftwarden, tracing off",
    "off-aio": "driftwarden, tracing off, asyncio's loop (`--event-loop asyncio`)",
    "on": "driftwarden, tracing on (OTLP to Jaeger)",
    "base": "driftwarden before issue 17 (`--baseline`: `git archive` of main)",
    "bare": "bare aiohttp handler (parse, compare `spec`, answer)",
    "bare-uv": "bare aiohttp handler on uvloop",
    "opa": f"OPA {opa_version()} (Rego: managed label + identity)",
}


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    memory = Path("/proc/meminfo").read_text().split()[1]
    cpus = len(os.sched_getaffinity(0))
    return f"{cpus} CPUs ({model}), {int(memory) // 1024 // 1024} GiB, Python {platform.python_version()}"


def admission_section(report: dict[str, Any]) -> list[str]:
    settings, summary = report["settings"], report["summary"]
    lines = [
        "## Admission: CPU per review against a bare handler",
        "",
        f"The same review ({settings['review']}, {settings['review_bytes']:,} bytes compact), the same "
        f"client ({settings['connections']} keep-alive connections), each server alone on one CPU "
        f"(placement {settings['placement']}), {settings['rounds']} rounds of {settings['duration']} s, the "
        "order reversed every other round. CPU per review is the server's user + system time from "
        "`/proc/<pid>/stat` over the measured window divided by the reviews answered; the ratio is taken "
        "within each round, then the median (range in brackets). Target: driftwarden at most 1.4x the bare "
        "handler; at least OPA's throughput.",
        "",
        "| server | CPU per review | x bare (range) | reviews/s | p50 | p99 | RSS idle | RSS after load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in settings["modes"]:
        fig = summary[mode]
        ratio = (
            f"{fig['cpu_vs_bare']} ({fig['cpu_vs_bare_min']}-{fig['cpu_vs_bare_max']})"
            if "cpu_vs_bare" in fig else ("1" if mode == "bare" else "")
        )  # fmt: skip
        lines.append(
            f"| {LABELS.get(mode, mode)} | {fig['server_cpu_us_per_request']:.0f} us | {ratio} | "
            f"{fig['rps']:.0f} | {fig['p50_ms']:.1f} ms | {fig['p99_ms']:.1f} ms | "
            f"{_mb(fig.get('server_idle_rss_mb'))} | {_mb(fig.get('server_rss_mb'))} |"
        )
    lines += ["", f"Reproduce: `{ADMISSION_COMMAND}` (`make bench` runs it).", ""]
    return lines


RATE_COMMAND = (
    "python -m benchmarks.admission_load --pin --rate 1000 --modes off,bare --rounds 2 "
    "--json benchmarks/results/admission-rate.json"
)


def rate_section(report: dict[str, Any]) -> list[str]:
    settings, summary = report["settings"], report["summary"]
    lines = [
        f"## Admission at a steady {settings['rate']:,.0f} reviews/s",
        "",
        "The same review and placement as above; the load generator offers "
        f"{settings['rate']:,.0f} reviews/s over {settings['connections']} connections (each on its own "
        "schedule; latency counted from when a review was due, so a queue shows), "
        f"{settings['rounds']} rounds of {settings['duration']} s. "
        "Target: p99 under 5 ms.",
        "",
        "| server | answered/s | p50 | p99 | CPU per review | x bare |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in settings["modes"]:
        fig = summary[mode]
        ratio = fig.get("cpu_vs_bare", 1 if mode == "bare" else "")
        lines.append(
            f"| {LABELS.get(mode, mode)} | {fig['rps']:.0f} | {fig['p50_ms']:.1f} ms | "
            f"{fig['p99_ms']:.1f} ms | {fig['server_cpu_us_per_request']:.0f} us | {ratio} |"
        )
    return [*lines, "", f"Reproduce: `{RATE_COMMAND}` (`make bench` runs it).", ""]


INSTRUCTIONS_COMMAND = (
    "python -m benchmarks.admission_instructions --requests 100 --warmup 30 "
    "--json benchmarks/results/admission_instructions.json"
)
INSTRUCTION_LABELS = {
    "off": "driftwarden, tracing off (uvloop)",
    "asyncio": "driftwarden, tracing off, asyncio's loop",
    "on": "driftwarden, tracing on (OTLP to Jaeger)",
    "bare": "bare aiohttp handler (asyncio's loop)",
}


def instructions_section(report: dict[str, Any]) -> list[str]:
    per_review, ratios = report["instructions_per_review"], report.get("x_bare", {})
    lines = [
        "## Admission in instructions per review",
        "",
        "valgrind's callgrind counts every user-space instruction of the real server while "
        f"{report['settings']['requests']} reviews are sent one at a time (the same review; a run with "
        f"{report['settings']['warmup']} reviews subtracted, so start-up and shutdown cancel out): a figure "
        "the machine's load does not move, unlike CPU time. It leaves out the kernel (TLS records, loopback "
        "TCP) and cache misses, which CPU time includes.",
        "",
        "| server | instructions per review | x bare |",
        "| --- | --- | --- |",
    ]
    for mode, count in per_review.items():
        ratio = ratios.get(mode, 1 if mode == "bare" else "")
        lines.append(f"| {INSTRUCTION_LABELS.get(mode, mode)} | {count / 1e6:.3f} million | {ratio} |")
    command = f"`{INSTRUCTIONS_COMMAND}` (`make bench-instructions`)"
    return [*lines, "", f"Reproduce: {command}.", ""]


def _mb(value: float | None) -> str:
    return f"{value:.1f} MB" if value else "not measured"


def startup_section(report: dict[str, Any]) -> list[str]:
    rows = {
        "help": "`driftwarden --help`",
        "app_get_first_request": "`driftwarden app get`, to its first request",
        "import_kubernetes_asyncio": "floor: `python -c 'import kubernetes_asyncio'`",
    }
    lines = [
        "## CLI start-up",
        "",
        f'Fresh processes, {report["rounds"]} each (README, "Commands").',
        "",
        "| command | min | median |",
        "| --- | --- | --- |",
    ]
    for key, label in rows.items():
        lines.append(f"| {label} | {report[key]['min_s']} s | {report[key]['median_s']} s |")
    command = "python -m benchmarks.cli_startup --json benchmarks/results/cli_startup.json"
    return [*lines, "", f"Reproduce: `{command}`.", ""]


def patch_section(report: dict[str, Any]) -> list[str]:
    p50, p99, settings = report["p50_ms"], report["p99_ms"], report["settings"]
    bare = (
        [f"| a bare handler reviews it (the floor) | {p50['bare']} ms | {p99['bare']} ms |",
         f"| added by a bare handler | {report['bare_added_p50_ms']} ms | |"]
        if "bare" in p50 else []
    )  # fmt: skip
    return [
        "## Through the API server: what the webhook adds to a PATCH",
        "",
        f"{settings['patches']} sequential PATCHes of each of three Deployments of the same shape (an "
        "annotation Git does not own, as the admin user), one of each in turn, the order rotating, so the "
        "three share the machine's load moment by moment: one that driftwarden's webhook configurations "
        "select (the real `driftwarden webhook serve`, its own process), one that the same configurations "
        "under other names select for a bare handler (`benchmarks.bare_handler`: a JSON parse and an answer, "
        "what any Python webhook costs here), and one no webhook selects; etcd and kube-apiserver on the "
        "same machine. The objects are in `enforce` mode and the editor is not break-glass, so the API "
        "server calls only the validating hook (the mutating one's `may-stamp` condition, docs/webhook.md). "
        "Target: added p50 under 2 ms.",
        "",
        "| | p50 | p99 |",
        "| --- | --- | --- |",
        f"| no webhook selects the object | {p50['without']} ms | {p99['without']} ms |",
        f"| driftwarden reviews it | {p50['with']} ms | {p99['with']} ms |",
        *bare,
        f"| **added by driftwarden** | **{report['added_p50_ms']} ms** | |",
        "",
        "Reproduce: `python -m benchmarks.apiserver_patch --json benchmarks/results/apiserver_patch.json`.",
        "",
    ]


def heal_section(report: dict[str, Any]) -> list[str]:
    settings = report["settings"]
    lines = [
        "## Edit → healed at scale",
        "",
        f"The real `driftwarden auditor run` (its service account) over ConfigMaps spread across "
        f"{settings['apps']} Applications (automated sync, self-heal), on the local etcd + kube-apiserver; "
        f"the admin user edits one managed field (`data.value`, owned by Git) of another object every "
        f"{1 / settings['rate']:.1f} s for {settings['duration']:.0f} s; a watch on the client side times "
        "each edit from its PATCH to the event that shows Git's value back. Target: p50 under 250 ms, "
        "p99 under 1 s at 5,000 objects. Documented floors of the alternatives: Argo CD's self-heal "
        "retries with a back-off starting at 2 s (and notices drift at its next refresh), Flux reconciles "
        "at an interval, 60 s or more in practice.",
        "",
        "| objects | edits healed | p50 | p99 | max | auditor RSS (synced / after) | first Synced |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in report["sizes"]:
        lines.append(
            f"| {size['objects']:,} | {size['healed']}/{size['edits']} | {size['p50_ms']} ms | "
            f"{size['p99_ms']} ms | {size['max_ms']} ms | {size['rss_synced_mb']} / "
            f"{size['rss_after_mb']} MB | {size['synced_s']} s |"
        )
    command = "python -m benchmarks.heal_latency --objects 1000,5000 --json benchmarks/results/heal.json"
    return [*lines, "", f"Reproduce: `{command}`.", ""]


def audit_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "## Full audit against `kubectl diff --server-side`",
        "",
        f"One pass over every object of {report['settings']['apps']} Applications at once (resolve, render, "
        "compare each object by a server-side-apply dry run; a new Reconciler, so no dry run is cached), "
        "against the built kubectl's `kubectl diff --server-side -f DIR` over the same stamped manifests, "
        f"as the same user, in {report['settings']['rounds']} alternating rounds on the same control plane "
        '(medians). Target: at least 3x faster. "Second pass" is the same Reconciler again at once: the '
        "auditor's steady state, where a dry run is kept until Git or the live object changes. CPU "
        "seconds over the same window from `/proc` and `getrusage`: the client (driftwarden's code in the "
        "benchmark process, or kubectl), kube-apiserver and etcd.",
        "",
        "| objects | driftwarden | kubectl diff | x faster | second pass (x faster) | CPU, driftwarden: "
        "client / API server / etcd | CPU, kubectl diff: client / API server / etcd |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in report["sizes"]:
        ours, theirs = size["cpu_s"]["driftwarden"], size["cpu_s"]["kubectl"]
        lines.append(
            f"| {size['objects']:,} | {size['driftwarden_s']} s | {size['kubectl_diff_s']} s | "
            f"**{size['faster']}** | {size['cached_s']} s ({size['cached_faster']}) | "
            f"{_cpu(ours, 'client')} | {_cpu(theirs, 'kubectl')} |"
        )
    command = "python -m benchmarks.full_audit --objects 1000,5000 --json benchmarks/results/full_audit.json"
    return [*lines, "", f"Reproduce: `{command}`.", ""]


def _cpu(cpu: dict[str, float], client: str) -> str:
    return " / ".join(f"{cpu.get(k, 0):.2f} s" for k in (client, "kube-apiserver", "etcd"))


def memory_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "## Auditor memory with many objects watched",
        "",
        f"The real `driftwarden auditor run` with the objects spread over {report['settings']['apps']} "
        f"Applications, {report['settings']['settle']:.0f} s after every Application is Synced (its watches "
        "listed and open); RSS from `/proc/<pid>/status`. Target: under 300 MB at 10,000 objects.",
        "",
        "| objects | RSS | peak RSS | first Synced |",
        "| --- | --- | --- | --- |",
    ]
    for size in report["sizes"]:
        lines.append(
            f"| {size['objects']:,} | {size['rss_mb']} MB | {size['peak_rss_mb']} MB | {size['synced_s']} s |"
        )
    command = "python -m benchmarks.auditor_memory --objects 1000,10000 --json benchmarks/results/memory.json"
    return [*lines, "", f"Reproduce: `{command}`.", ""]


SECTIONS = (
    ("heal.json", heal_section),
    ("full_audit.json", audit_section),
    ("memory.json", memory_section),
)


def write(results: Path, out: Path, *, preface: str) -> None:
    sections: list[str] = []
    admission = results / "admission.json"
    if admission.is_file():
        sections += admission_section(json.loads(admission.read_text()))
    instructions = results / "admission_instructions.json"
    if instructions.is_file():
        sections += instructions_section(json.loads(instructions.read_text()))
    rate = results / "admission-rate.json"
    if rate.is_file():
        sections += rate_section(json.loads(rate.read_text()))
    patch = results / "apiserver_patch.json"
    if patch.is_file():
        sections += patch_section(json.loads(patch.read_text()))
    for name, section in SECTIONS:
        if (results / name).is_file():
            sections += section(json.loads((results / name).read_text()))
    startup = results / "cli_startup.json"
    if startup.is_file():
        sections += startup_section(json.loads(startup.read_text()))
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks.report`) on {when}; machine: {machine()}. Raw "
        "results: `benchmarks/results/*.json`. Figures move by about 20% with what else the shared machine "
        "runs; ratios measured in one run move much less.",
        "",
    ]
    out.write_text("\n".join([*head, *sections, preface.rstrip(), ""]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks.md")
    parser.add_argument(
        "--notes", type=Path, default=ROOT / "benchmarks/notes.md", help="hand-written analysis appended"
    )
    args = parser.parse_args(argv)
    notes = args.notes.read_text() if args.notes.is_file() else ""
    write(args.results, args.out, preface=notes)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
