"""A seed infra repository for tests: plain apps, a Kustomize base with overlays, and a Helm chart.

The layout users start from (apps/web-app, apps/api, apps/database, base/, overlays/{development,staging,
production}, charts/guestbook), written as text so tests commit it into real Git repositories.
"""

from __future__ import annotations

import json


def _deployment(name: str, image: str, replicas: int = 1) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: {name}
        image: {image}
"""


def _object(api_version: str, kind: str, name: str) -> str:
    return f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}}}\n"


def _service(name: str) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
        f"spec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n"
    )


def _overlay(env: str, replicas: int, tag: str) -> str:
    return f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: {env}-
resources: [../../base]
images:
- name: nginx
  newTag: "{tag}"
patches:
- target: {{kind: Deployment, name: guestbook}}
  patch: |
    - op: replace
      path: /spec/replicas
      value: {replicas}
"""


CHART_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
      - name: web
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        env: [{name: GREETING, value: {{ .Values.greeting | quote }}}]
"""

SEED = {
    "README.md": "# infra\n",
    "apps/web-app/deployment.yaml": _deployment("web-app", "nginx:1.25", 2) + "---\n" + _service("web-app"),
    "apps/web-app/configmap.yml": "---\n"
    + _object("v1", "ConfigMap", "web-config")
    + "data: {a: '1'}\n---\n",
    "apps/web-app/notes.txt": "not a manifest\n",
    "apps/api/deployment.yaml": _deployment("api", "ghcr.io/example/api:2.0"),
    "apps/api/service.json": json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "api"},
            "spec": {"ports": [{"port": 8080}]},
        }
    ),
    "apps/database/statefulset.yaml": _object("apps/v1", "StatefulSet", "postgres")
    + "spec: {serviceName: pg}\n",
    "apps/database/extra/list.yaml": "apiVersion: v1\nkind: List\nitems:\n"
    "- {apiVersion: v1, kind: Secret, metadata: {name: db-a}}\n"
    "- {apiVersion: v1, kind: Secret, metadata: {name: db-b}}\n",
    "apps/database/extra/deeper/pvc.yaml": _object("v1", "PersistentVolumeClaim", "data"),
    "apps/empty/README.md": "nothing to deploy yet\n",
    "base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "base/deployment.yaml": _deployment("guestbook", "nginx:1.0"),
    "base/service.yaml": _service("guestbook"),
    "overlays/development/kustomization.yaml": _overlay("dev", 1, "dev"),
    "overlays/staging/kustomization.yaml": _overlay("staging", 2, "1.25.0-rc1"),
    "overlays/production/kustomization.yml": _overlay("prod", 5, "1.25.3"),
    "charts/guestbook/Chart.yaml": "apiVersion: v2\nname: guestbook\nversion: 0.1.0\n",
    "charts/guestbook/values.yaml": "replicaCount: 1\nimage: {repository: nginx, tag: '1.0'}\ngreeting: hi\n",
    "charts/guestbook/values-prod.yaml": "replicaCount: 3\n",
    "charts/guestbook/templates/deployment.yaml": CHART_TEMPLATE,
    "charts/guestbook/templates/service.yaml": _service("{{ .Release.Name }}-svc"),
    "both/kustomization.yaml": "resources: [cm.yaml]\n",
    "both/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-kustomize}\n",
    "both/Chart.yaml": "apiVersion: v2\nname: both\nversion: 0.1.0\n",
    "both/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-helm}\n",
}


WEB_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""
"""A two-replica nginx Deployment ``web``: what the self-heal tests edit and expect back."""
SELF_HEALING = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}
