"""The Dockerfile, checked against the repository (no docker engine here): stages, pins, user, entry point,
COPY sources and the .dockerignore; and its HEALTHCHECK command run for real against a serving webhook.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from certs.pki import issue, new_ca
from certs.policy import ServingNames
from driftwarden import contract
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    value: str


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    stage, parsed = -1, []
    for line in lines:
        keyword, _, value = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        parsed.append(Instruction(stage, keyword.upper(), value.strip()))
    return parsed


DOCKERFILE = parse((ROOT / "Dockerfile").read_text())


def stage_of(name: str | None) -> list[Instruction]:
    """The instructions of the stage ``name`` (None: the final stage)."""
    froms = [i for i in DOCKERFILE if i.keyword == "FROM"]
    if name is None:
        index = froms[-1].stage
    else:
        (index,) = [i.stage for i in froms if i.value.lower().endswith(f" as {name}")]
    return [i for i in DOCKERFILE if i.stage == index]


def values(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.value for i in stage if i.keyword == keyword]


def go_mod_pin(module_dir: str, module: str) -> tuple[str, str]:
    """(go directive, version of ``module``) in tools/<module_dir>/go.mod."""
    text = (ROOT / "tools" / module_dir / "go.mod").read_text()
    go = re.search(r"^go (\S+)$", text, re.MULTILINE)
    pin = re.search(rf"^\s*{re.escape(module)} (v\S+)", text, re.MULTILINE)
    assert go and pin, f"tools/{module_dir}/go.mod lacks a go directive or {module}"
    return go.group(1), pin.group(1)


def test_stages_are_the_go_builds_the_wheel_and_a_slim_final_image() -> None:
    froms = values(DOCKERFILE, "FROM")
    assert [f.split()[-1] for f in froms[:-1]] == ["kubectl", "helm", "wheel"]
    assert froms[-1] == "python:3.11-slim"
    assert values(stage_of("wheel"), "FROM") == ["python:3.11-slim AS wheel"]


def test_go_stages_build_static_binaries_at_the_versions_tools_pins() -> None:
    for name, module_dir, module, arg in (
        ("kubectl", "k8s", "k8s.io/kubernetes", "KUBERNETES_VERSION"),
        ("helm", "helm", "helm.sh/helm/v3", "HELM_VERSION"),
    ):
        stage = stage_of(name)
        go, pin = go_mod_pin(module_dir, module)
        assert f"{arg}={pin}" in values(stage, "ARG"), f"{name}: the Dockerfile's {arg} is not {pin}"
        image = re.fullmatch(r"golang:(\d+)\.(\d+)\S* AS \w+", values(stage, "FROM")[0])
        assert image, values(stage, "FROM")
        assert tuple(map(int, image.groups())) >= tuple(map(int, go.split(".")[:2]))
        env = " ".join(values(stage, "ENV")).split()
        assert {"CGO_ENABLED=0", "GOTOOLCHAIN=local"} <= set(env)
        assert f"tools/{module_dir}/go.mod tools/{module_dir}/go.sum ./" in values(stage, "COPY")
        assert any("go build -trimpath" in run and module in run for run in values(stage, "RUN"))
    k8s_script = (ROOT / "tools/build-control-plane.sh").read_text()
    assert 'k8s_version="' + go_mod_pin("k8s", "k8s.io/kubernetes")[1] + '"' in k8s_script


def test_the_final_image_runs_as_non_root_with_the_console_script() -> None:
    final = stage_of(None)
    (user,) = values(final, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) == 65532 and gid == "65532", "USER must be numeric and non-root"
    assert any("useradd" in run and "--uid 65532" in run for run in values(final, "RUN"))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (entrypoint,) = values(final, "ENTRYPOINT")
    assert json.loads(entrypoint) == list(pyproject["project"]["scripts"])
    assert pyproject["project"]["scripts"]["driftwarden"] == "cli.main:main"
    runs = " ".join(values(final, "RUN"))
    assert "apt-get install" in runs and " git " in runs + " "
    assert "--no-index" in runs and "-c /tmp/constraints.txt driftwarden" in runs and "[dev]" not in runs
    copies = values(final, "COPY")
    assert "--from=kubectl /out/kubectl /usr/local/bin/kubectl" in copies
    assert "--from=helm /out/helm /usr/local/bin/helm" in copies
    assert "--from=wheel /wheels /tmp/wheels" in copies


def test_the_wheel_stage_copies_every_package_and_the_constraints() -> None:
    copies = values(stage_of("wheel"), "COPY")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert f"{package} {package}" in copies, f"package {package} is not copied into the wheel stage"
    runs = " ".join(values(stage_of("wheel"), "RUN"))
    assert "-c requirements/constraints.txt" in runs


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, bare) or fnmatch.fnmatch(p, bare.replace("**/", "")) for p in prefixes):
            ignored = not negate
    return ignored


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for copy in values(DOCKERFILE, "COPY"):
        if copy.startswith("--from="):
            continue
        sources.extend(copy.split()[:-1])
    assert len(sources) >= 10
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    assert _ignored(".venv", patterns) and _ignored(".git", patterns) and _ignored("tests/x.py", patterns)


async def test_the_healthcheck_passes_against_a_serving_webhook_and_fails_on_its_admission_port(
    tmp_path: Path,
) -> None:
    (healthcheck,) = values(stage_of(None), "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "8081" in command[2]  # the probe port the manifests use
    now = dt.datetime.now(dt.UTC)
    ca = new_ca("healthcheck-test-ca", now=now, validity=dt.timedelta(days=1))
    names = ServingNames(contract.WEBHOOK_SERVICE, contract.DEFAULT_INSTALL_NAMESPACE)
    serving = issue(names.request(validity=dt.timedelta(days=1)), ca=ca, now=now)
    for name, data in (("tls.crt", serving.cert_pem), ("tls.key", serving.key_pem)):
        (tmp_path / name).write_bytes(data)
    app = make_app(make_settings(), tracer=TracerProvider().get_tracer("test"))
    settings = ServerSettings(
        tmp_path / "tls.crt", tmp_path / "tls.key", host="127.0.0.1", port=0, metrics_port=0
    )
    async with WebhookServer(app, settings) as server:
        assert server.probes is not None
        codes = []
        # The probe port answers; the admission port (TLS, reviews only) must not count as healthy.
        for port in (server.probes.port, server.port):
            env = {"DRIFTWARDEN_HEALTHCHECK_PORT": str(port)}
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", command[2], env=env,
                                                        stderr=asyncio.subprocess.PIPE)  # fmt: skip
            _, err = await proc.communicate()
            codes.append((proc.returncode, err.decode()))
    assert codes[0][0] == 0, codes[0][1]
    assert codes[1][0] != 0
