"""The demo's Git repository: laid out like a classic GitOps infrastructure repo, and its Applications.

Pure data and a thin git wrapper: ``apps/web-app`` (Deployment, Service, ConfigMap, Secret), ``apps/api`` (a
Deployment whose replicas an autoscaler owns, so Git leaves them out), ``apps/database`` (a StatefulSet),
``base/`` (Namespace and NetworkPolicy) and ``overlays/{development,staging,production}``. The repository is
real: made with the git CLI on disk, read by the auditor over ``file://``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.gitrepo import GitRepo
from devtools.gitrepo import make_repo as make_git_repo
from driftwarden import contract

SECRET_SENTINEL = "demo-s3cret-never-printed"

WEB_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{containerPort: 80}]
          envFrom: [{configMapRef: {name: web-config}}]
"""
WEB_SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""
WEB_CONFIG = """apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config}}
data: {{COLOR: {color}, GREETING: hello}}
"""
WEB_SECRET = f"""apiVersion: v1
kind: Secret
metadata: {{name: web-credentials}}
type: Opaque
stringData: {{password: {SECRET_SENTINEL}}}
"""
API_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  # No replicas: an autoscaler owns them (Git leaving them out is what Argo CD and Flux advise with an HPA).
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "ghcr.io/example/api:2.4.1", ports: [{containerPort: 8080}]}]
"""
API_SERVICE = WEB_SERVICE.replace("web", "api").replace("targetPort: 80", "targetPort: 8080")
DB_STATEFULSET = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, labels: {app: postgres}}
spec:
  serviceName: postgres
  replicas: 1
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers: [{name: postgres, image: "postgres:17", ports: [{containerPort: 5432}]}]
"""
DB_SERVICE = """apiVersion: v1
kind: Service
metadata: {name: postgres}
spec:
  clusterIP: None
  selector: {app: postgres}
  ports: [{port: 5432}]
"""
BASE_NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: platform}\n"
BASE_POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: platform}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""
BASE_KUSTOMIZATION = "resources: [namespace.yaml, networkpolicy.yaml]\n"


ENVIRONMENTS = ("development", "staging", "production")


def _overlay(env: str) -> str:
    return f"resources: [../../base]\nlabels:\n  - pairs: {{environment: {env}}}\n"


FILES: dict[str, str] = {
    "README.md": "# infra\n\nWhat runs in the cluster; driftwarden keeps the cluster equal to it.\n",
    "apps/web-app/deployment.yaml": WEB_DEPLOYMENT,
    "apps/web-app/service.yaml": WEB_SERVICE,
    "apps/web-app/configmap.yaml": WEB_CONFIG.format(color="blue"),
    "apps/web-app/secret.yaml": WEB_SECRET,
    "apps/api/deployment.yaml": API_DEPLOYMENT,
    "apps/api/service.yaml": API_SERVICE,
    "apps/database/statefulset.yaml": DB_STATEFULSET,
    "apps/database/service.yaml": DB_SERVICE,
    "base/namespace.yaml": BASE_NAMESPACE,
    "base/networkpolicy.yaml": BASE_POLICY,
    "base/kustomization.yaml": BASE_KUSTOMIZATION,
    **{
        f"overlays/{env}/kustomization.yaml": _overlay(env)
        for env in ("development", "staging", "production")
    },
}

APPS: dict[str, tuple[str, str]] = {
    "web-app": ("apps/web-app", "web"),
    "api": ("apps/api", "api"),
    "database": ("apps/database", "database"),
    "platform": ("overlays/production", "platform"),
}
"""Application name -> (path in the repository, destination namespace)."""


def application(name: str, *, repo_url: str) -> dict[str, Any]:
    path, namespace = APPS[name]
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.APPLICATION_KIND,
        "metadata": {"name": name, "namespace": contract.DEFAULT_INSTALL_NAMESPACE},
        "spec": {
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
            "destination": {"namespace": namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": [] if name == "platform" else ["CreateNamespace=true"],
            },
            "guard": {"mode": "enforce"},
        },
    }


def make_repo(path: Path) -> GitRepo:
    """The demo's repository at ``path``: every file above in one first commit on ``main``."""
    return make_git_repo(path, FILES, message="infra: web-app, api, database and the platform base")
