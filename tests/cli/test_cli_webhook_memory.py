"""The serving webhook does not load the Kubernetes client (issue 17, memory).

``webhook serve`` never calls the API server; kubernetes-asyncio is about 37 MB of resident memory, so only
``webhook install`` and ``uninstall`` import it (tests/cli/test_cli_webhook_install.py runs them). Checked in
a fresh interpreter, as imports are process-wide.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_serve_command_and_the_webhook_import_no_kubernetes_client() -> None:
    code = (
        "import sys, cli.webhookrun, webhook.process, webhook.server, webhook.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes_asyncio'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
