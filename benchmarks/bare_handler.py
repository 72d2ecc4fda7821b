"""The floor for admission CPU: a bare aiohttp HTTPS handler that does the least a guard could do.

Benchmark only (benchmarks.admission_load runs it beside the real webhook, same review, same client, same
core): parse the JSON body with the stdlib, compare ``spec`` of the object and the old object, answer an
AdmissionReview (on ``/validate`` and, for benchmarks.apiserver_patch's mutating configuration, ``/mutate``).
No strict decoding, no field ownership, no span, no metrics, no connection guard: what is
left is the cost of TLS, HTTP and JSON in Python, which the issue's target (at most 1.4 times this) is
measured against.

    python -m benchmarks.bare_handler --port 8443 --tls-cert-file tls.crt --tls-key-file tls.key
        [--event-loop asyncio|uvloop]

asyncio's loop is the floor's definition; uvloop (what driftwarden runs on by default) is measured beside
it so that the comparison on the same loop is in the table too.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys

from aiohttp import web

from driftwarden.eventloop import loop_factory
from driftwarden.settings import EVENT_LOOPS


async def validate(request: web.Request) -> web.Response:
    try:
        review = json.loads(await request.read())
        req = review["request"]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "not an AdmissionReview"}, status=400)
    same = (req.get("object") or {}).get("spec") == (req.get("oldObject") or {}).get("spec")
    response: dict[str, object] = {"uid": req["uid"], "allowed": same}
    if not same:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": "spec changed"}
    answer = {"apiVersion": review["apiVersion"], "kind": review["kind"], "response": response}
    return web.json_response(answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bare_handler", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert-file", required=True)
    parser.add_argument("--tls-key-file", required=True)
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default="asyncio", help="(default %(default)s)")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert_file, args.tls_key_file)
    app = web.Application(client_max_size=3 * 1024 * 1024)
    app.router.add_post("/validate", validate)
    app.router.add_post("/mutate", validate)  # allowed answers carry no patch: the same handler
    loop = loop_factory(args.event_loop)()
    web.run_app(
        app, host=args.host, port=args.port, ssl_context=context, print=None, access_log=None, loop=loop
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
