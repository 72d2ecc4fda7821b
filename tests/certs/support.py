"""Helpers of the certs tests: a kubelet-style Secret volume, and clients that trust what is published.

``SecretVolume`` copies a Secret into a directory the way the kubelet updates a mounted Secret: every
version goes into a fresh timestamped directory and the ``..data`` symlink is swapped atomically, with
``tls.crt`` → ``..data/tls.crt``. So the webhook under test reloads exactly as it would in a pod.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from driftwarden.kube.rest import request_json, resource_path


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


async def read_secret(api: client.ApiClient, namespace: str, name: str) -> dict[str, bytes]:
    path = resource_path(group="", version="v1", plural="secrets", namespace=namespace, name=name)
    found = await request_json(api, "GET", path)
    return {k: unb64(v) for k, v in (found.get("data") or {}).items()}


async def published_bundles(api: client.ApiClient, name: str, *, mutating: bool = False) -> list[bytes]:
    """The caBundle of every webhook of a webhook configuration, as the API server stores it."""
    plural = "mutatingwebhookconfigurations" if mutating else "validatingwebhookconfigurations"
    path = resource_path(group="admissionregistration.k8s.io", version="v1", plural=plural, name=name)
    found = await request_json(api, "GET", path)
    return [unb64(h["clientConfig"].get("caBundle", "")) for h in found["webhooks"]]


@dataclass
class SecretVolume:
    """A directory kept equal to a Secret, updated like the kubelet updates a Secret volume."""

    api: client.ApiClient
    namespace: str
    name: str
    directory: Path
    interval: float = 0.2
    updates: int = 0
    _last: dict[str, bytes] = field(default_factory=dict)

    def path(self, key: str) -> Path:
        return self.directory / key

    def _write(self, data: dict[str, bytes]) -> None:
        version = self.directory / f"..{uuid.uuid4().hex}"
        version.mkdir(parents=True)
        for key, value in data.items():
            (version / key).write_bytes(value)
        tmp = self.directory / "..data_tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(version.name)
        os.replace(tmp, self.directory / "..data")  # the atomic swap
        for key in data:
            link = self.directory / key
            if not link.is_symlink():
                link.symlink_to(f"..data/{key}")

    async def sync(self) -> bool:
        data = await read_secret(self.api, self.namespace, self.name)
        if data == self._last:
            return False
        await asyncio.to_thread(self._write, data)
        self._last = data
        self.updates += 1
        return True

    @contextlib.asynccontextmanager
    async def mounted(self) -> AsyncIterator[SecretVolume]:
        """Sync once, then keep syncing in a background task until the block ends."""
        self.directory.mkdir(parents=True, exist_ok=True)
        await self.sync()

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                await self.sync()

        task = asyncio.create_task(loop(), name=f"secret-volume-{self.name}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def review_body() -> bytes:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}}
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "operation": "UPDATE", "name": "cm", "namespace": "ns",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj, "oldObject": obj,
        },
    }).encode()  # fmt: skip


async def post_review(port: int, bundle: bytes) -> tuple[int, dict[str, Any], bytes]:
    """POST one review on a new TLS connection that trusts only ``bundle`` (hostname checked: 127.0.0.1).

    Returns (HTTP status, decoded body, the certificate the server presented, as PEM)."""
    context = ssl.create_default_context(cadata=bundle.decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        served = ssl.DER_cert_to_PEM_cert(sslobj.getpeercert(binary_form=True)).encode()
        body = review_body()
        writer.write(
            b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload or b"{}"), served
