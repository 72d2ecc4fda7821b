"""Screenshots of a linked edit → heal drift trace in the real Jaeger UI (docs/images/jaeger-drift-*.png).

Run from the repository root, after ``make venv control-plane helm jaeger``::

    .venv/bin/python -m tools.screenshot_drift_trace --jaeger-ui /path/to/jaeger-ui/packages/jaeger-ui/build

It starts what the end-to-end test tests/e2e/test_jaeger_drift_link.py starts (the real etcd +
kube-apiserver, the webhook and the auditor, both exporting OTLP to the pinned Jaeger), here with Jaeger
serving the built jaeger-ui given as ``--jaeger-ui``. The person ``alice`` runs ``kubectl set image`` on a
Git-managed Deployment whose Application asks for warn mode; the webhook lets it through with a warning and
stamps the drift annotation, and the auditor heals it. Headless Chromium, driven over the DevTools protocol,
then opens the heal trace, expands the ``auditor.heal`` span with its Tags and References (the span link, a
FOLLOWS_FROM reference to the ``admission.review`` span of the edit), and takes a screenshot; a second one
shows that edit's trace.

The Jaeger binary built by ``make jaeger`` embeds no UI, and jaeger-ui is not part of this repository: build
it yourself from https://github.com/jaegertracing/jaeger-ui at the tag matching the pinned Jaeger (v1.76.0
for Jaeger v2.13.0) with Node 24: ``npm ci`` at its root, then ``npm run build`` in packages/jaeger-ui,
which writes packages/jaeger-ui/build (the directory with index.html to pass here). Chromium comes from the
distribution (``apt-get install chromium``). Everything runs on 127.0.0.1 and is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from opentelemetry.sdk.trace import TracerProvider

from devtools.controlplane import ControlPlane, ControlPlaneSettings
from devtools.jaeger import Jaeger, find_jaeger, free_port
from driftwarden.kube.client import api_client_for
from driftwarden.settings import control_plane_bin_dir, environment
from driftwarden.telemetry.setup import tracer_provider
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    auditor_api,
    create_application,
    running_auditor,
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import make_repo
from tests.support.guard import AUDITOR_USER, ensure_namespace, grant_cluster_admin, serving_pair
from tests.support.jaeger import links, spans_named, tags, wait_for_trace, wait_for_traces
from tests.support.kubectl import kubectl
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually
from webhook.admission.profiles import get_profile
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.install import install, uninstall
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration
from webhook.server import ServerSettings, WebhookServer

APP, NAMESPACE, USER = "web-app", "production", "alice"
GIT_IMAGE, EDITED_IMAGE = "nginx:1.27", "nginx:1.28"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


# --- Chromium over the DevTools protocol ---------------------------------------------------------------


class Page:
    """One Chromium tab, driven by DevTools protocol commands over its websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        call = self.next_id
        await self.ws.send_json({"id": call, "method": method, "params": params or {}})
        async for message in self.ws:  # events arrive in between; the answer carries our id
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            body = json.loads(message.data)
            if body.get("id") == call:
                if "error" in body:
                    raise RuntimeError(f"{method}: {body['error']}")
                result: dict[str, Any] = body.get("result") or {}
                return result
        raise RuntimeError(f"Chromium closed the DevTools connection during {method}")

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression[:80]}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, *, seconds: float = 30) -> None:
        """Until the JavaScript ``expression`` is truthy in the page."""
        async with asyncio.timeout(seconds):
            while not await self.evaluate(expression):  # noqa: ASYNC110 - the condition lives in the page
                await asyncio.sleep(0.2)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def chromium(binary: str, work_dir: Path, *, width: int, height: int) -> AsyncIterator[Page]:
    """Headless Chromium with a fresh profile, one tab at ``width`` x ``height``; killed on exit."""
    port = free_port()
    profile = work_dir / "chromium-profile"
    profile.mkdir(parents=True)
    argv = [
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--remote-debugging-address=127.0.0.1",
        f"--remote-debugging-port={port}",
        "about:blank",
    ]
    with (work_dir / "chromium.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        async with aiohttp.ClientSession() as session:
            ws_url = await _page_websocket(session, port, proc)
            async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                )
                yield page
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the browser and its renderer/zygote children
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _page_websocket(session: aiohttp.ClientSession, port: int, proc: asyncio.subprocess.Process) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError("chromium exited while starting (see chromium.log)")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                for target in await resp.json():
                    if target.get("type") == "page":
                        return str(target["webSocketDebuggerUrl"])
        await asyncio.sleep(0.2)
    raise RuntimeError("chromium's DevTools endpoint did not answer in 30 s")


# --- clicks in the Jaeger UI ------------------------------------------------------------------------

_OPEN_SPAN = """(() => {
  const name = [...document.querySelectorAll('.span-row a.span-name')]
    .find(a => a.querySelector('.endpoint-name')?.textContent === %s);
  if (!name) return false;
  if (!name.classList.contains('is-detail-expanded')) name.click();
  return true;
})()"""

_OPEN_SECTION = """(() => {
  const header = document.querySelector('.detail-row %s');
  if (!header) return false;
  if (header.getAttribute('aria-checked') !== 'true') header.click();
  return header.getAttribute('aria-checked') === 'true';
})()"""


async def show_trace(page: Page, url: str, *, operation: str, sections: Sequence[str], out: Path) -> None:
    """Open a trace page, expand the span ``operation`` and its detail ``sections``, screenshot it."""
    await page.send("Page.navigate", {"url": url})
    try:
        await page.wait_for("document.querySelectorAll('.span-row').length > 0")
        await page.wait_for(_OPEN_SPAN % json.dumps(operation))
        await page.wait_for("document.querySelector('.detail-row') !== null")
        for header in sections:
            await page.wait_for(_OPEN_SECTION % header)
    except TimeoutError:
        failed = out.with_suffix(".failed.png")
        await page.screenshot(failed)
        raise RuntimeError(f"the Jaeger UI did not show what was expected at {url}; see {failed}") from None
    await asyncio.sleep(1)  # let the last layout and fonts settle
    await page.screenshot(out)


# --- the drift story ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving_webhook(
    admin: client.ApiClient, work: Path, provider: TracerProvider
) -> AsyncIterator[None]:
    """The webhook in-process over HTTPS on 127.0.0.1, registered with the API server, as the real
    ``driftwarden webhook serve`` wires it (enforce by default; the Application below asks for warn)."""
    ca, cert, key = serving_pair(work)
    profile = get_profile("driftwarden")
    settings = make_settings(profile=profile, gitops_identities=[AUDITOR_USER], default_mode="enforce")
    app = make_app(settings, tracer=provider.get_tracer("driftwarden.webhook"))
    async with WebhookServer(app, ServerSettings(cert, key, host="127.0.0.1", port=0)) as server:
        selection = selection_for(profile, skip_users=[AUDITOR_USER], timeout_seconds=5)
        endpoint = Endpoint(ca_bundle=ca.cert_pem, url=f"https://127.0.0.1:{server.port}")
        await install(
            admin,
            validating=validating_configuration(endpoint=endpoint, selection=selection),
            mutating=mutating_configuration(endpoint=endpoint, selection=selection),
        )
        try:
            yield
        finally:
            await uninstall(admin)


async def make_drift(plane: ControlPlane, jaeger: Jaeger, work: Path) -> tuple[str, str]:
    """An out-of-band edit by a person and its heal, both exported to ``jaeger``: (heal trace, edit trace)."""
    assert plane.admin is not None
    clients = Clients(plane)
    admin = api_client_for(plane.admin)
    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=[USER])
    webhook_traces = tracer_provider("driftwarden-webhook", env=jaeger.otel_env())
    auditor_traces = tracer_provider("driftwarden-auditor", env=jaeger.otel_env())
    api = await auditor_api(plane, clients, tracer=auditor_traces.get_tracer("driftwarden.auditor"))
    repo = make_repo(work / "infra", {"web/deployment.yaml": WEB_DEPLOYMENT})
    try:
        async with (
            running_auditor(
                plane, api, work / "git", tracer=auditor_traces.get_tracer("driftwarden.auditor")
            ) as run,
            serving_webhook(admin, work / "webhook", webhook_traces),
        ):
            body = application(
                APP,
                repo_url=repo.url,
                path="web",
                namespace=NAMESPACE,
                syncPolicy=SELF_HEALING,
                guard={"mode": "warn"},
            )
            await create_application(admin, body)
            await eventually(lambda: synced_and_watched(admin, APP, run.healer, ("apps", "Deployment")))
            person = await clients.user_credentials(USER)
            assert person.kubeconfig is not None
            edit = ("set", "image", "deployment/web", f"web={EDITED_IMAGE}")
            code, out, err = await kubectl(plane, person.kubeconfig, "-n", NAMESPACE, *edit)
            print(f"$ kubectl set image deployment/web web={EDITED_IMAGE}  (as {USER})\n{out}{err}", end="")
            if code != 0:
                raise RuntimeError(f"kubectl failed ({code})")

            async def healed() -> bool:
                live = await request_image(admin)
                return live == GIT_IMAGE

            await eventually(healed, seconds=30)
            print(f"the auditor put the image back to {GIT_IMAGE}")
    finally:
        for provider in (webhook_traces, auditor_traces):
            provider.force_flush()
            provider.shutdown()
        await admin.close()
        await clients.close()

    def linked_heal(trace: dict[str, Any]) -> bool:
        return any(links(s) for s in spans_named(trace, "auditor.heal"))

    (heal_trace,) = await wait_for_traces(
        jaeger, "driftwarden-auditor", operation="auditor.heal", match=linked_heal
    )
    (heal,) = [s for s in spans_named(heal_trace, "auditor.heal") if links(s)]
    ((edit_trace_id, edit_span_id),) = links(heal)
    edit_trace = await wait_for_trace(jaeger, edit_trace_id)
    (edit,) = [s for s in edit_trace["spans"] if s["spanID"] == edit_span_id]
    print(f"heal trace {heal_trace['traceID']}: fields {tags(heal).get('driftwarden.fields')}")
    print(f"edit trace {edit_trace_id}: {edit['operationName']} by {tags(edit).get('enduser.id')}")
    return str(heal_trace["traceID"]), edit_trace_id


async def request_image(admin: client.ApiClient) -> str:
    live = await client.AppsV1Api(admin).read_namespaced_deployment("web", NAMESPACE)
    return str(live.spec.template.spec.containers[0].image)


async def run(args: argparse.Namespace, ui: Path, browser: str, out_dir: Path) -> None:
    env = environment()
    with tempfile.TemporaryDirectory(prefix="driftwarden-screenshot-") as tmp:
        work = Path(tmp)
        plane_settings = ControlPlaneSettings(bin_dir=control_plane_bin_dir(env), work_dir=work / "plane")
        async with (
            ControlPlane(plane_settings) as plane,
            Jaeger(find_jaeger(env), work / "jaeger", ui_assets=ui) as jaeger,
        ):
            heal_trace, edit_trace = await make_drift(plane, jaeger, work)
            async with chromium(browser, work, width=args.width, height=args.height) as page:
                heal_png = out_dir / "jaeger-drift-heal.png"
                edit_png = out_dir / "jaeger-drift-edit.png"
                await show_trace(
                    page,
                    f"{jaeger.query_url}/trace/{heal_trace}",
                    operation="auditor.heal",
                    sections=(".AccordianKeyValues--header", ".AccordianReferences--header"),
                    out=heal_png,
                )
                await show_trace(
                    page,
                    f"{jaeger.query_url}/trace/{edit_trace}",
                    operation="admission.review",
                    sections=(".AccordianKeyValues--header",),
                    out=edit_png,
                )
                print(f"wrote {heal_png} and {edit_png}")
                if args.hold:
                    print(f"Jaeger UI at {jaeger.query_url}/trace/{heal_trace}; Ctrl-C stops everything")
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.screenshot_drift_trace",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=(
            "JAEGER_UI must be a jaeger-ui build made separately (it is not in this repository and the "
            "jaeger binary of `make jaeger` embeds no UI): from github.com/jaegertracing/jaeger-ui at tag "
            "v1.76.0 (Jaeger v2.13.0) with Node 24, run `npm ci` at its root and `npm run build` in "
            "packages/jaeger-ui, then pass packages/jaeger-ui/build. Needs `make control-plane helm jaeger` "
            "and Chromium (apt-get install chromium)."
        ),
    )
    parser.add_argument(
        "--jaeger-ui",
        type=Path,
        required=True,
        metavar="JAEGER_UI",
        help="the built jaeger-ui directory (the one with index.html)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("docs/images"),
        help="where jaeger-drift-heal.png and jaeger-drift-edit.png go (default: docs/images)",
    )
    parser.add_argument("--chromium", help="the Chromium binary (default: chromium on PATH)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument(
        "--hold",
        action="store_true",
        help="keep it all running after the screenshots, to look at the UI; Ctrl-C stops it",
    )
    args = parser.parse_args(argv)
    ui = args.jaeger_ui.resolve()
    if not (ui / "index.html").is_file():
        parser.error(f"{ui} has no index.html: pass the build directory of a built jaeger-ui")
    browser = args.chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        parser.error("no chromium found: apt-get install chromium, or pass --chromium")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args, ui, browser, args.out_dir))


if __name__ == "__main__":
    main()
