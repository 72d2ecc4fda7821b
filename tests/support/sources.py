"""Repositories of the source types beyond plain YAML, Kustomize and a chart in Git: jsonnet (with TLAs,
extVars and libraries), a plugin's directory and directories that hold only libraries or only docs.

Text, so that tests commit it into real Git repositories (``git_repo(JSONNET)``).
"""

from __future__ import annotations

LIBRARY = """{
  configMap(name, data):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: data },
  deployment(name, image, replicas):: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: name, labels: { app: name } },
    spec: {
      replicas: replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: name, image: image }] },
      },
    },
  },
}
"""

MAIN = """// Top-level arguments (tlas) and external variables (extVars), as Argo CD passes them.
local k = import 'k.libsonnet';
local settings = import 'settings.libsonnet';
function(image, replicas=1) [
  k.configMap('web-settings', settings { env: std.extVar('env'), tier: std.toString(std.extVar('tier')) }),
  { apiVersion: 'v1', kind: 'List', items: [k.deployment('web', image, replicas)] },
]
"""

SERVICE = """{
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web' },
  spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
}
"""

JSONNET = {
    "jsonnet/lib/k.libsonnet": LIBRARY,
    "jsonnet/app/settings.libsonnet": "{ color: 'blue' }\n",
    "jsonnet/app/main.jsonnet": MAIN,
    "jsonnet/app/service.jsonnet": SERVICE,
    "jsonnet/app/a-plain.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: b}\n",
    "jsonnet/app/broken.jsonnet": "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: error 'no' } }\n",
    "jsonnet/app/README.md": "# web\n",
    "jsonnet/evil/absolute.jsonnet": "{ data: importstr '/etc/hostname' }\n",
    "jsonnet/evil/up.jsonnet": "{ data: importstr '../../../../../../../../etc/hostname' }\n",
    "jsonnet/libonly/x.libsonnet": "{}\n",
    "plugin/main.ts": "new App().synth();\n",
    "plugin/app.cue": "package web\n",
    "plugin/README.md": "rendered by a config management plugin\n",
    "docs-only/README.md": "nothing to deploy yet\n",
}

JSONNET_OPTIONS = {
    "exclude": "broken.jsonnet",
    "jsonnet": {
        "extVars": [{"name": "env", "value": "prod"}, {"name": "tier", "value": "1 + 2", "code": True}],
        "tlas": [{"name": "image", "value": "nginx:1.27"}, {"name": "replicas", "value": "2", "code": True}],
        "libs": ["jsonnet/lib"],
    },
}
"""``spec.source.directory`` for jsonnet/app: the broken file excluded, variables and the library set."""
