"""``driftwarden demo``: the drift-guard story on the dev stack, each claim checked against the cluster.

Orchestration, development only. Every step prints the command a person would type, does it for real (kubectl
as alice or sre, git commits, a signed push webhook), then checks what it claims by reading the cluster,
the Application's status or Jaeger; a claim that does not hold raises ``DemoFailed`` and the demo exits
non-zero. It must never print a Secret's value (the repository's Secret carries a sentinel to prove it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from devtools.dev.gitops import APPS, SECRET_SENTINEL, WEB_CONFIG, application
from devtools.dev.stack import DevStack
from devtools.gitrepo import GitRepo
from driftwarden import contract
from driftwarden.errors import DriftwardenError
from driftwarden.kube.rest import request_json, resource_path

Check = Callable[[], Awaitable[bool]]


def _apps_path(name: str | None = None) -> str:
    return resource_path(
        group=contract.GROUP,
        version=contract.VERSION,
        plural=contract.APPLICATION_PLURAL,
        namespace=contract.DEFAULT_INSTALL_NAMESPACE,
        name=name,
    )


class DemoFailed(DriftwardenError):
    """A claim of the demo did not hold on the cluster."""


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Story:
    """The steps, in order; ``out`` prints (the demo's output is its user interface)."""

    stack: DevStack
    repo: GitRepo
    admin: client.ApiClient
    out: Callable[[str], None] = print
    step: int = 0

    # -- how a step speaks ---------------------------------------------------------------------------

    def title(self, text: str) -> None:
        self.step += 1
        self.out(f"\n{self.step}. {text}")

    def command(self, text: str) -> None:
        self.out(f"   $ {text}")

    def holds(self, claim: str) -> None:
        self.out(f"   ok: {claim}")

    async def until(self, check: Check, *, seconds: float, claim: str) -> float:
        """Poll ``check`` until it holds; the seconds it took. DemoFailed naming ``claim`` otherwise."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(seconds):
                while not await check():  # noqa: ASYNC110 - the condition lives in the API server
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise DemoFailed(f"step {self.step}: not true after {seconds:.0f}s: {claim}") from None
        return time.monotonic() - started

    # -- what a step does ----------------------------------------------------------------------------

    async def kubectl(self, *args: str, user: str) -> Result:
        config = self.stack.admin_kubeconfig if user == "admin" else self.stack.kubeconfigs[user]
        shown = " ".join(args)
        self.command(f"kubectl {shown}" + ("" if user == "admin" else f"      # as {user}"))
        proc = await asyncio.create_subprocess_exec(
            str(self.stack.kubectl), "--kubeconfig", str(config), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        return Result(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))

    async def app(self, name: str) -> dict[str, Any]:
        return await request_json(self.admin, "GET", _apps_path(name))

    async def status(self, name: str) -> tuple[str, str, str]:
        status = (await self.app(name)).get("status") or {}
        sync, health = status.get("sync") or {}, status.get("health") or {}
        return str(sync.get("status", "")), str(health.get("status", "")), str(sync.get("revision", ""))

    async def image(self, namespace: str, name: str = "web") -> str:
        deploy = await client.AppsV1Api(self.admin).read_namespaced_deployment(name, namespace)
        return str(deploy.spec.template.spec.containers[0].image)

    async def push(self) -> list[str]:
        """What a Git host sends after a push: a signed GitHub push event to the auditor's webhook."""
        repository = {"clone_url": self.repo.url, "html_url": self.repo.url}
        event = {"ref": "refs/heads/main", "after": self.repo.head(), "repository": repository}
        body = json.dumps(event).encode()
        signature = hmac.new(self.stack.push_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}",
                   "Content-Type": "application/json"}  # fmt: skip
        self.command(f"git push                    # the Git host calls {self.stack.push_url}")
        async with aiohttp.ClientSession() as session, session.post(self.stack.push_url, data=body,
                                                                     headers=headers) as resp:  # fmt: skip
            answer = await resp.json(content_type=None)
            if resp.status != 202:
                raise DemoFailed(f"step {self.step}: the push webhook answered {resp.status}: {answer}")
        return [str(a) for a in answer.get("refreshed", answer.get("applications", []))]

    # -- the story -----------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.initial_sync()
        await self.enforce_denies()
        await self.warn_heals()
        await self.deleted_service_returns()
        await self.autoscaler_left_alone()
        await self.breakglass()
        await self.commit_syncs()
        await self.revert_rolls_back()
        await self.empty_path_refused()
        await self.trace_in_jaeger()

    async def initial_sync(self) -> None:
        self.title(
            "Applications from a Git repository sync, and their Pods run (on kwok nodes: no container runs)"
        )
        for name in APPS:
            body = application(name, repo_url=self.repo.url)
            await request_json(self.admin, "POST", _apps_path(), body=body)
        self.command(f"kubectl apply -f applications.yaml   # {', '.join(APPS)} from {self.repo.url}")
        head = self.repo.head()

        async def healthy() -> bool:
            states = [await self.status(name) for name in APPS]
            return all(state == ("Synced", "Healthy", head) for state in states)

        took = await self.until(
            healthy, seconds=120, claim=f"every Application Synced and Healthy at {head[:7]}"
        )
        self.holds(f"{', '.join(APPS)}: Synced and Healthy at {head[:7]} after {took:.1f}s")
        pods = await client.CoreV1Api(self.admin).list_namespaced_pod("web", label_selector="app=web")
        running = [p for p in pods.items if p.status.phase == "Running" and p.spec.node_name]
        if len(running) != 2:
            raise DemoFailed(f"step {self.step}: expected 2 running web Pods, found {len(running)}")
        self.holds(f"web Pods Running on {', '.join(sorted({p.spec.node_name for p in running}))}")

    async def enforce_denies(self) -> None:
        self.title("alice edits a field Git owns: the webhook denies it (enforce mode)")
        result = await self.kubectl(
            "-n", "web", "set", "image", "deployment/web", "web=nginx:evil", user="alice"
        )
        if result.code == 0 or "denied" not in result.err or "web-app" not in result.err:
            raise DemoFailed(
                f"step {self.step}: expected a denial naming web-app, got {result.code}: {result.err}"
            )
        self.out("   " + result.err.strip().replace("\n", "\n   "))
        if await self.image("web") != "nginx:1.27":
            raise DemoFailed(f"step {self.step}: the denied edit changed the image")
        self.holds("denied, and the Deployment still runs nginx:1.27")

    async def warn_heals(self) -> None:
        self.title("The same edit in warn mode: allowed, flagged with who made it, and healed at once")
        self.command("kubectl -n driftwarden-system patch application web-app --type merge "
                     "-p '{\"spec\":{\"guard\":{\"mode\":\"warn\"}}}'")  # fmt: skip
        patch = {"spec": {"guard": {"mode": "warn"}}}
        merge = "application/merge-patch+json"
        await request_json(self.admin, "PATCH", _apps_path("web-app"), body=patch, content_type=merge)

        async def warned() -> bool:
            deploy = await client.AppsV1Api(self.admin).read_namespaced_deployment("web", "web")
            return (deploy.metadata.annotations or {}).get(contract.ANNOTATION_GUARD) == "warn"

        await self.until(warned, seconds=60, claim="the auditor stamped guard mode warn on web-app's objects")
        result = await self.kubectl(
            "-n", "web", "set", "image", "deployment/web", "web=nginx:evil", user="alice"
        )
        edited = time.monotonic()
        if result.code != 0 or "Warning" not in result.err:
            raise DemoFailed(f"step {self.step}: expected an allowed edit with a warning: {result.err}")
        self.out("   " + result.err.strip().replace("\n", "\n   "))

        async def healed() -> bool:
            return await self.image("web") == "nginx:1.27"

        await self.until(healed, seconds=30, claim="the auditor put nginx:1.27 back")
        took = time.monotonic() - edited
        self.holds(f"healed {took * 1000:.0f} ms after kubectl returned")

        async def recorded() -> bool:
            drift = ((await self.app("web-app")).get("status") or {}).get("drift") or []
            return any(r.get("user") == "alice" and r.get("action") == "healed" for r in drift)

        await self.until(recorded, seconds=15, claim="web-app's status.drift names alice")
        self.holds("web-app's status.drift records the edit by alice (who, when, which fields; never values)")

    async def deleted_service_returns(self) -> None:
        self.title("A Git-managed Service deleted by hand comes back")
        before = (await client.CoreV1Api(self.admin).read_namespaced_service("web", "web")).metadata.uid
        result = await self.kubectl("-n", "web", "delete", "service", "web", user="alice")
        if result.code != 0:
            raise DemoFailed(f"step {self.step}: the delete failed: {result.err}")

        async def back() -> bool:
            try:
                svc = await client.CoreV1Api(self.admin).read_namespaced_service("web", "web")
            except client.ApiException:
                return False
            return bool(svc.metadata.uid != before)

        took = await self.until(back, seconds=30, claim="Service web recreated")
        self.holds(f"Service web recreated {took * 1000:.0f} ms later (a new uid)")

    async def autoscaler_left_alone(self) -> None:
        self.title("An autoscaler changes replicas Git leaves out: left alone")
        self.out("   (no metrics API runs here, so kubectl scale plays the HorizontalPodAutoscaler)")
        result = await self.kubectl("-n", "api", "scale", "deployment/api", "--replicas=3", user="alice")
        if result.code != 0:
            raise DemoFailed(f"step {self.step}: the scale was refused: {result.err}")
        await asyncio.sleep(3)  # many heal latencies, and a poll interval of the auditor
        deploy = await client.AppsV1Api(self.admin).read_namespaced_deployment("api", "api")
        drift = ((await self.app("api")).get("status") or {}).get("drift") or []
        if deploy.spec.replicas != 3 or drift:
            raise DemoFailed(f"step {self.step}: replicas {deploy.spec.replicas}, drift records {drift}")
        self.holds("3 replicas kept, no drift recorded, the Application still Synced")

    async def breakglass(self) -> None:
        self.title("sre, in the break-glass group, edits: held instead of reverted, then released, healed")
        image = "postgres=postgres:17.1"
        result = await self.kubectl(
            "-n", "database", "set", "image", "statefulset/postgres", image, user="sre"
        )
        if result.code != 0 or "break-glass" not in result.err.lower():
            raise DemoFailed(f"step {self.step}: expected a break-glass warning: {result.code} {result.err}")
        self.out("   " + result.err.strip().replace("\n", "\n   "))

        async def held() -> bool:
            holds = ((await self.app("database")).get("status") or {}).get("holds") or []
            return any(h.get("name") == "postgres" and h.get("user") == "sre" for h in holds)

        await self.until(held, seconds=30, claim="database's status.holds names sre's edit of postgres")
        await asyncio.sleep(2)  # many heal latencies: a reverted edit would be gone by now
        if await self.statefulset_image() != "postgres:17.1":
            raise DemoFailed(f"step {self.step}: the held edit was reverted")
        (hold,) = [h for h in ((await self.app("database")).get("status") or {}).get("holds") or []
                   if h.get("name") == "postgres"]  # fmt: skip
        self.holds(
            f"held for sre until {hold.get('until')} (spec.guard.breakglassHold), image postgres:17.1 kept"
        )
        self.command("driftwarden app release database --resource StatefulSet/postgres")
        argv = ["-m", "cli.main", "app", "release", "database", "--resource", "StatefulSet/postgres",
                "--kubeconfig", str(self.stack.admin_kubeconfig)]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            self.stack.settings.python, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise DemoFailed(f"step {self.step}: app release failed: {err.decode(errors='replace')}")
        self.out("   " + out.decode(errors="replace").strip())

        async def healed() -> bool:
            return await self.statefulset_image() == "postgres:17" and not await held()

        took = await self.until(
            healed, seconds=30, claim="the released StatefulSet healed back to postgres:17"
        )
        self.holds(f"released, and healed back to postgres:17 {took:.1f}s later")

    async def statefulset_image(self) -> str:
        found = await client.AppsV1Api(self.admin).read_namespaced_stateful_set("postgres", "database")
        return str(found.spec.template.spec.containers[0].image)

    async def commit_syncs(self) -> None:
        self.title("A commit is synced at once (Git push webhook)")
        self.command("git commit -am 'web-app: green'")
        sha = self.repo.commit({"apps/web-app/configmap.yaml": WEB_CONFIG.format(color="green")},
                               message="web-app: green")  # fmt: skip
        started = time.monotonic()
        refreshed = await self.push()
        if f"{contract.DEFAULT_INSTALL_NAMESPACE}/web-app" not in refreshed:
            raise DemoFailed(f"step {self.step}: the push refreshed {refreshed}, not web-app")

        async def synced() -> bool:
            cm = await client.CoreV1Api(self.admin).read_namespaced_config_map("web-config", "web")
            return cm.data.get("COLOR") == "green" and (await self.status("web-app"))[2] == sha

        await self.until(synced, seconds=30, claim=f"web-app synced to {sha[:7]}")
        self.holds(f"web-app at {sha[:7]}, COLOR=green, {time.monotonic() - started:.1f}s after the push")

    async def revert_rolls_back(self) -> None:
        self.title("git revert rolls it back the same way")
        self.command("git revert --no-edit HEAD")
        self.repo.git("revert", "--no-edit", "HEAD")
        sha = self.repo.head()
        await self.push()

        async def back() -> bool:
            cm = await client.CoreV1Api(self.admin).read_namespaced_config_map("web-config", "web")
            return cm.data.get("COLOR") == "blue" and (await self.status("web-app"))[2] == sha

        await self.until(back, seconds=30, claim=f"web-app back to COLOR=blue at {sha[:7]}")
        self.holds(f"web-app at {sha[:7]}, COLOR=blue again")

    async def empty_path_refused(self) -> None:
        self.title("A commit that empties an Application's path: nothing is pruned, and the reason is shown")
        self.command(
            "git rm apps/database/*.yaml && echo moved > apps/database/README.md && git commit -m oops"
        )
        self.repo.commit({"apps/database/README.md": "moved elsewhere\n"},
                         remove=["apps/database/statefulset.yaml", "apps/database/service.yaml"],
                         message="oops")  # fmt: skip
        await self.push()

        async def refused() -> bool:
            conditions = ((await self.app("database")).get("status") or {}).get("conditions") or []
            return any(c.get("type") == "PruneRefused" for c in conditions)

        await self.until(refused, seconds=30, claim="database shows PruneRefused")
        conditions = ((await self.app("database")).get("status") or {}).get("conditions") or []
        (message,) = [c["message"] for c in conditions if c.get("type") == "PruneRefused"]
        await client.AppsV1Api(self.admin).read_namespaced_stateful_set("postgres", "database")  # still there
        self.holds(f"StatefulSet postgres kept; PruneRefused: {message}")

    async def trace_in_jaeger(self) -> None:
        self.title("The edit and its heal, linked in one trace view (Jaeger)")
        jaeger = self.stack.jaeger
        if jaeger is None:
            self.out(
                "   skipped: Jaeger is not built here (make jaeger); the heal spans still carry the link"
            )
            return

        async def linked() -> bool:
            for found in await jaeger.traces("driftwarden-auditor", operation="auditor.heal"):
                for span in found.get("spans", []):
                    if span.get("operationName") == "auditor.heal" and any(
                        r.get("refType") == "FOLLOWS_FROM" for r in span.get("references", [])
                    ):
                        self.trace_id = str(found["traceID"])
                        return True
            return False

        await self.until(linked, seconds=60, claim="a heal span linked to the admission review in Jaeger")
        self.holds(f"heal trace {jaeger.query_url}/api/traces/{self.trace_id} links to the edit's review")

    trace_id: str = ""


def leaked(text: str) -> bool:
    """Whether ``text`` carries the repository Secret's value (the demo's own output must never)."""
    return SECRET_SENTINEL in text
