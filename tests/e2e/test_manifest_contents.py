"""What the rendered manifests promise: webhooks in step with webhook/registration.py, hardened pods, least
privilege, and container arguments the driftwarden CLI really accepts.

Rendered with the kubectl built for the control plane (Kustomize is inside it); no cluster needed.
"""

from __future__ import annotations

import copy
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import build_parser
from devtools.controlplane.binaries import find_binaries
from driftwarden import contract
from driftwarden.settings import control_plane_bin_dir, environment
from webhook.admission.profiles import get_profile
from webhook.registration import (
    MUTATING_NAME,
    VALIDATING_NAME,
    Endpoint,
    mutating_configuration,
    selection_for,
    validating_configuration,
)

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
TARGETS = ("base", "overlays/development", "overlays/production")
# (failurePolicy, timeoutSeconds) each target chose, and docs/deploy.md explains.
POLICIES = {"base": ("Fail", 5), "overlays/development": ("Ignore", 5), "overlays/production": ("Fail", 3)}


@cache
def rendered(target: str) -> tuple[dict[str, Any], ...]:
    kubectl = find_binaries(control_plane_bin_dir(environment())).kubectl
    out = subprocess.run([str(kubectl), "kustomize", str(MANIFESTS / target)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def one(target: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in rendered(target) if o["kind"] == kind and o["metadata"]["name"] == name]
    return copy.deepcopy(found)


def pod_specs(target: str) -> dict[str, dict[str, Any]]:
    specs = {}
    for obj in rendered(target):
        if obj["kind"] == "Deployment":
            specs[obj["metadata"]["name"]] = obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            specs[obj["metadata"]["name"]] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def test_the_shared_names_are_the_webhooks_own() -> None:
    assert (VALIDATING_NAME, MUTATING_NAME) == (
        contract.VALIDATING_WEBHOOK_CONFIGURATION,
        contract.MUTATING_WEBHOOK_CONFIGURATION,
    )


@pytest.mark.parametrize("target", TARGETS)
def test_webhook_configurations_match_what_registration_builds(target: str) -> None:
    failure_policy, timeout = POLICIES[target]
    # Built from the webhook's own serve flags: the mutating call is skipped by their default mode and
    # break-glass lists, so configurations and Deployment must agree (docs/webhook.md).
    (container,) = one(target, "Deployment", "driftwarden-webhook")["spec"]["template"]["spec"]["containers"]
    serve = build_parser().parse_args(container["args"])
    selection = selection_for(
        get_profile("driftwarden"), skip_users=[contract.auditor_identity()],
        excluded_namespaces=["kube-system", contract.DEFAULT_INSTALL_NAMESPACE],
        timeout_seconds=timeout, failure_policy=failure_policy, default_mode=serve.default_mode,
        breakglass_users=serve.breakglass_user, breakglass_groups=serve.breakglass_group,
    )  # fmt: skip
    endpoint = Endpoint(ca_bundle=b"", service_namespace=contract.DEFAULT_INSTALL_NAMESPACE,
                        service_name=contract.WEBHOOK_SERVICE)  # fmt: skip
    for built in (
        validating_configuration(endpoint=endpoint, selection=selection),
        mutating_configuration(endpoint=endpoint, selection=selection),
    ):
        manifest = one(target, built["kind"], built["metadata"]["name"])
        assert built["metadata"]["labels"].items() <= manifest["metadata"]["labels"].items()
        for hook in built["webhooks"]:
            del hook["clientConfig"]["caBundle"]  # injected by the rotator, never in the manifests
        assert manifest["webhooks"] == built["webhooks"]


def test_production_fails_closed_and_development_fails_open() -> None:
    for target, policy in (("overlays/production", "Fail"), ("overlays/development", "Ignore")):
        hooks = [
            h for o in rendered(target) if o["kind"].endswith("WebhookConfiguration") for h in o["webhooks"]
        ]
        assert len(hooks) == 3
        assert {h["failurePolicy"] for h in hooks} == {policy}
        assert all(h["timeoutSeconds"] <= 5 for h in hooks)
        for hook in hooks:  # whatever the policy, driftwarden and the control plane can always be repaired
            (expression,) = hook["namespaceSelector"]["matchExpressions"]
            assert expression["operator"] == "NotIn"
            assert {"kube-system", "driftwarden-system"} <= set(expression["values"])


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_is_hardened_and_bounded(target: str) -> None:
    specs = pod_specs(target)
    assert set(specs) == {"driftwarden-webhook", "driftwarden-auditor", "driftwarden-certs"}
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 65532, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, name
            assert container["image"].split(":")[0].endswith("driftwarden"), name
        secrets = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        assert contract.WEBHOOK_CA_SECRET not in secrets  # no pod ever mounts the CA key
        assert secrets == ({contract.WEBHOOK_TLS_SECRET} if name == "driftwarden-webhook" else set()), name


@pytest.mark.parametrize("target", TARGETS)
def test_the_webhook_is_redundant_served_on_8443_and_probed_on_8081(target: str) -> None:
    deployment = one(target, "Deployment", "driftwarden-webhook")
    spec = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443, "metrics": 8081}
    # The admission port answers only the API server; the kubelet probes the plain-HTTP port.
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"], ports[get["port"]]) == (path, "HTTP", 8081)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    args = build_parser().parse_args(container["args"])  # the CLI really accepts them
    assert args.port == 8443
    assert args.metrics_port == 8081
    assert str(args.tls_cert_file.parent) == mount["mountPath"] == str(args.tls_key_file.parent)
    service = one(target, "Service", contract.WEBHOOK_SERVICE)
    (port,) = service["spec"]["ports"]
    assert (port["port"], ports[port["targetPort"]]) == (443, 8443)
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = one(target, "PodDisruptionBudget", "driftwarden-webhook")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    policy = one(target, "NetworkPolicy", "driftwarden-webhook")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": 8443}]},
        {"ports": [{"protocol": "TCP", "port": 8081}]},
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_the_auditor_elects_a_leader_and_the_rotator_runs_the_real_cli(target: str) -> None:
    auditor = one(target, "Deployment", "driftwarden-auditor")
    assert auditor["spec"]["replicas"] == 2
    (container,) = auditor["spec"]["template"]["spec"]["containers"]
    parsed = build_parser().parse_args(container["args"])  # the CLI really accepts them
    assert parsed.leader_elect is True and parsed.leader_id == "$(POD_NAME)"
    assert "POD_NAME" in {e["name"] for e in container["env"]}  # so $(POD_NAME) expands in args
    assert parsed.install_namespace == contract.DEFAULT_INSTALL_NAMESPACE
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": parsed.metrics_port}
    policy = one(target, "NetworkPolicy", "driftwarden-auditor")
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": parsed.metrics_port}]}]
    cron = one(target, "CronJob", "driftwarden-certs")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.namespace, args.service, args.watch) == (contract.DEFAULT_INSTALL_NAMESPACE,
                                                          contract.WEBHOOK_SERVICE, False)  # fmt: skip


def test_rbac_is_least_privilege() -> None:
    role = one("base", "Role", "driftwarden-webhook")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": [contract.WEBHOOK_TLS_SECRET], "verbs": ["get"]}]  # fmt: skip
    certs_role = one("base", "Role", "driftwarden-certs")
    named = [r for r in certs_role["rules"] if "resourceNames" in r]
    own = [contract.WEBHOOK_TLS_SECRET, contract.WEBHOOK_CA_SECRET]
    assert named == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": own, "verbs": ["get", "update"]}
    ]
    cluster = one("base", "ClusterRole", "driftwarden-certs")
    assert {(r["resources"][0], *r["resourceNames"]) for r in cluster["rules"]} == {
        ("validatingwebhookconfigurations", contract.VALIDATING_WEBHOOK_CONFIGURATION),
        ("mutatingwebhookconfigurations", contract.MUTATING_WEBHOOK_CONFIGURATION),
    }
    assert all(set(r["verbs"]) == {"get", "patch"} for r in cluster["rules"])
    sas = {o["metadata"]["name"] for o in rendered("base") if o["kind"] == "ServiceAccount"}
    assert sas == {"driftwarden-webhook", contract.AUDITOR_SERVICE_ACCOUNT, "driftwarden-certs"}
    assert one("base", "ServiceAccount", "driftwarden-webhook")["automountServiceAccountToken"] is False
    referenced = {o["metadata"]["name"] for o in rendered("base") if o["kind"] == "CustomResourceDefinition"}
    assert referenced == {contract.APPLICATION_CRD_NAME}
    assert one("base", "ClusterRole", "driftwarden-auditor")["rules"]  # ../rbac/auditor-clusterrole.yaml
