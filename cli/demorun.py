"""``driftwarden demo``: the drift-guard story on this machine, every claim checked (development only;
imported when the command runs).

Orchestration only: flags -> the dev stack (``devtools.dev.stack``) with a fresh GitOps repository
(``devtools.dev.gitops``) -> the story (``devtools.dev.story``), then an exit code: 0 when every step held, 1
when one did not (the step and what was seen are printed), 2 for an error before the story could run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Mapping

from cli.devrun import describe, stack_settings
from devtools.dev.gitops import make_repo
from devtools.dev.stack import DevSettings, running
from devtools.dev.story import DemoFailed, Story, leaked
from driftwarden.kube.client import api_client_for
from driftwarden.signals import stop_on_signals

DEMO_POLL_SECONDS = 5.0
"""The auditor's full-pass interval in the demo: health follows Pods becoming Ready within seconds."""


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = dataclasses.replace(stack_settings(args, env, name="demo"), poll_interval=DEMO_POLL_SECONDS)
    return asyncio.run(_demo(settings, env, keep=args.keep))


async def _demo(settings: DevSettings, env: Mapping[str, str], *, keep: bool) -> int:
    printed: list[str] = []

    def out(text: str) -> None:
        printed.append(text)
        print(text, flush=True)

    out(f"starting the local cluster and driftwarden in {settings.work_dir} ...")
    async with running(settings, env=env) as stack:
        out(describe(stack))
        repo = make_repo(settings.work_dir / "gitops" / "infra")
        assert stack.plane.admin is not None
        async with api_client_for(stack.plane.admin) as admin:
            story = Story(stack, repo, admin, out=out)
            try:
                await story.run()
            except DemoFailed as exc:
                out(f"\nFAILED: {exc}")
                return 1
        if any(leaked(line) for line in printed):
            out("\nFAILED: the demo's output showed a Secret value")
            return 1
        out(f"\nall {story.step} steps held.")
        if keep:
            out("everything keeps running; press Ctrl-C to stop")
            with stop_on_signals() as stop:
                await stop.wait()
    return 0
