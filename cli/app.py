"""``driftwarden app list|get|diff|sync|history|rollback|release``: the flags and help of ``app``.

Registration only, run whenever the parser is built: it imports nothing heavy, and each command's work is
``cli.apprun``'s (reading) or ``cli.appsync``'s (reconciling), imported when it runs (``driftwarden --help``
stays fast). Exit codes: 0 done (``diff``: in sync), 1 ``diff`` found differences or a ``sync`` left a
resource failed, 2 an error (via ``DriftwardenError`` in ``cli.main``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from cli.flags import kube_flags
from driftwarden import contract

GITOPS_USER = contract.auditor_identity()

DESCRIPTION = f"""\
Inspect, diff, sync and roll back driftwarden Applications, like `argocd app` and kubectl.

Every request is made as the caller (the kubeconfig's user) or, with --as USER, as USER by
impersonation. diff only reads and dry-runs; sync and rollback write the rendered objects as the
caller. The admission webhook judges those writes, and diff's server-side dry runs, like any other
request: with the webhook in enforce mode, run diff, sync and rollback as the GitOps identity, e.g.
  driftwarden app sync NAME --as {GITOPS_USER}
(impersonating needs the `impersonate` permission on that service account).

exit codes: 0 done (diff: in sync); 1 diff found differences, or sync/rollback left a resource failed;
2 error (unknown Application, bad kubeconfig, unreachable API server or Git, render failure, or a dry
run the API server refused for diff or rollback)."""


def _output(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument("-o", "--output", choices=choices, help=f"output format: {', '.join(choices)}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "app", help="Applications: list, get, diff, sync, history, rollback", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(title="app commands", metavar="COMMAND", required=True)
    common = common_flags()

    def add(name: str, help: str) -> argparse.ArgumentParser:
        cmd = commands.add_parser(name, help=help, description=help, parents=[common])
        cmd.set_defaults(run=run, app_command=name)
        return cmd

    listing = add("list", "list Applications: NAME SYNC HEALTH REVISION AGE")
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="list them in every namespace")
    _output(listing, "json", "yaml", "wide")
    get = add("get", "show an Application: source, sync, health, conditions and its resources")
    get.add_argument("name", help="Application name")
    _output(get, "json", "yaml", "wide")
    diff = add("diff", "show how the cluster differs from Git (exit 1 if it does); writes nothing")
    diff.add_argument("name", help="Application name")
    diff.add_argument("--revision", help="compare with this branch, tag or commit (default: its target)")
    sync = add("sync", "apply what Git says now, as the caller (see --as)")
    sync.add_argument("name", help="Application name")
    sync.add_argument("--revision", help="sync this branch, tag or commit (default: its target)")
    sync.add_argument("--prune", action="store_true", help="also delete objects that left Git")
    history = add("history", "list the revisions deployed: ID REVISION DEPLOYED-AT")
    history.add_argument("name", help="Application name")
    _output(history, "json", "yaml", "wide")
    rollback = add(
        "rollback", "dry-run, then turn automated sync off and sync the revision of a history entry"
    )
    rollback.add_argument("name", help="Application name")
    rollback.add_argument("id", type=int, help="history ID to roll back to (see `app history`)")
    rollback.add_argument("--prune", action="store_true", help="also delete objects that left Git")
    release = add("release", "end break-glass holds now: the auditor heals those objects")
    release.add_argument("name", help="Application name")
    release.add_argument("--resource", metavar="KIND/NAME", help="only this object (default: every hold)")


def common_flags() -> argparse.ArgumentParser:
    """--kubeconfig, --context, -n/--namespace and --as, shared by every ``app`` subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    kube_flags(common)
    common.add_argument(
        "-n", "--namespace", default=contract.DEFAULT_INSTALL_NAMESPACE,
        help="namespace of the Applications, driftwarden's install namespace, where repository "
        "credentials live too (default %(default)s)",
    )  # fmt: skip
    common.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as USER (Impersonate-User); with the webhook in enforce mode, diff, sync "
                        f"and rollback must run as the GitOps identity, e.g. --as {GITOPS_USER}")  # fmt: skip
    return common


RECONCILING = frozenset({"diff", "sync", "rollback", "release"})
"""The commands that render, compare or write (cli.appsync); the others only read (cli.apprun)."""


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the chosen ``app`` command; its module is imported only now (start-up time)."""
    if args.app_command in RECONCILING:
        from cli import appsync  # noqa: PLC0415  # renderers, Git, the Reconciler: only when one runs

        return appsync.COMMANDS[args.app_command](args, env)
    from cli import apprun  # noqa: PLC0415  # the Kubernetes client: only when it runs

    return apprun.COMMANDS[args.app_command](args, env)
