"""``driftwarden webhook serve`` logs one INFO line per admission decision, text or JSON, and no Secret value.

The real command runs as a child process over HTTPS; a denied ``kubectl edit`` of a Git-managed Secret is
posted to /validate and /mutate, and the log is read back. A sentinel value sits in the Secret's data (and
its base64 form in the stored object): it must appear nowhere in the log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.guard import serving_pair
from tests.webhook.reviews import admission_review, changed

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "s3ntinel-do-not-log"
ENCODED = base64.b64encode(SENTINEL.encode()).decode()
TRACKING = "driftwarden.io/tracking-id"


def managed_secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {"password": ENCODED},
        "metadata": {
            "name": "db", "namespace": "production",
            "labels": {"driftwarden.io/app": "web-app"},
            "annotations": {TRACKING: "driftwarden-system/web-app:/Secret:production/db"},
            "managedFields": [{"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "driftwarden",
                               "operation": "Apply",
                               "fieldsV1": {"f:data": {"f:password": {}}, "f:type": {}}}],
        },
    }  # fmt: skip


def edit_of_the_secret() -> bytes:
    old = managed_secret()
    new = changed(old, lambda o: (o["data"].update(password=base64.b64encode(b"other").decode()),
                                  o.update(stringData={"token": SENTINEL})))  # fmt: skip
    review = admission_review(old=old, new=new, name="db", user="jane", kind=("", "v1", "Secret"),
                              resource=("", "v1", "secrets"))  # fmt: skip
    return json.dumps(review).encode()


async def serve_and_post(tmp_path: Path, log_format: str) -> str:
    """Run ``webhook serve --log-format FORMAT``, post the edit to both endpoints, stop it; its log."""
    ca, cert, key = serving_pair(tmp_path)
    log = tmp_path / "webhook.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", "webhook", "serve", "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
            "--log-format", log_format,
            cwd=ROOT, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            while not (
                port := re.search(r"serving admission reviews on https://127\.0\.0\.1:(\d+)", log.read_text())
            ):
                assert proc.returncode is None, log.read_text()
                await asyncio.sleep(0.1)
        context = ssl.create_default_context(cadata=ca.cert_pem.decode())
        async with aiohttp.ClientSession() as session:
            for endpoint in ("validate", "mutate"):
                url = f"https://127.0.0.1:{port[1]}/{endpoint}"
                headers = {"Content-Type": "application/json"}
                async with session.post(url, data=edit_of_the_secret(), headers=headers, ssl=context) as resp:
                    assert resp.status == 200
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            assert await proc.wait() == 0, log.read_text()
    return log.read_text()


async def test_json_log_has_one_structured_line_per_decision_and_no_secret_value(tmp_path: Path) -> None:
    text = await serve_and_post(tmp_path, "json")
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    decisions = [r for r in records if r.get("event") == "admission"]
    assert [(r["endpoint"], r["level"]) for r in decisions] == [("validate", "INFO"), ("mutate", "INFO")]
    validate = decisions[0]
    assert (validate["operation"], validate["resource"], validate["namespace"], validate["name"]) == (
        "UPDATE", "secrets", "production", "db",
    )  # fmt: skip
    assert (validate["user"], validate["allowed"], validate["violation"], validate["mode"]) == (
        "jane", False, True, "enforce",
    )  # fmt: skip
    assert "data.password" in validate["fields"] and validate["app"]
    assert SENTINEL not in text and ENCODED not in text


async def test_text_log_is_the_default_format(tmp_path: Path) -> None:
    text = await serve_and_post(tmp_path, "text")
    lines = [line for line in text.splitlines() if " admission endpoint=" in line]
    assert len(lines) == 2 and all(" INFO webhook.app admission endpoint=" in line for line in lines)
    assert 'operation=UPDATE group="" resource=secrets' in lines[0] and "allowed=False" in lines[0]
    assert SENTINEL not in text and ENCODED not in text
