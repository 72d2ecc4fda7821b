# syntax=docker/dockerfile:1
# driftwarden's one image: the webhook (`webhook serve`), the auditor (`auditor run`) and the certificate
# rotator (`certs rotate`) are commands of the same `driftwarden` entry point. Build: docker build -t driftwarden .
#
#   kubectl, helm  the binaries the auditor renders with (kubectl carries Kustomize), built from the Go module
#                  proxy with the very modules tools/k8s/go.mod and tools/helm/go.mod pin, as tools/*.sh do
#   wheel          driftwarden's wheel and its runtime dependencies' wheels, at requirements/constraints.txt
#   (final)        python:3.11-slim + git (GitPython runs it) + the above; non-root uid 65532, no compilers
# tests/e2e/test_dockerfile.py checks the pins, stages, user, entry point and COPY sources against the repo.

FROM golang:1.25-bookworm AS kubectl
# Must equal the k8s.io/kubernetes requirement of tools/k8s/go.mod.
ARG KUBERNETES_VERSION=v1.35.4
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
WORKDIR /src
COPY tools/k8s/go.mod tools/k8s/go.sum ./
RUN grep -Eq "^[[:space:]]*k8s\.io/kubernetes ${KUBERNETES_VERSION}( |$)" go.mod \
    || { echo "KUBERNETES_VERSION ${KUBERNETES_VERSION} is not what tools/k8s/go.mod pins" >&2; exit 1; }
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    minor="$(echo "${KUBERNETES_VERSION}" | cut -d. -f2)" \
    && go build -trimpath -tags selinux,notest -o /out/kubectl \
       -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION} \
                 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} \
                 -X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION}" \
       k8s.io/kubernetes/cmd/kubectl \
    && /out/kubectl version --client

FROM golang:1.25-bookworm AS helm
# Must equal the helm.sh/helm/v3 requirement of tools/helm/go.mod.
ARG HELM_VERSION=v3.19.0
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
WORKDIR /src
COPY tools/helm/go.mod tools/helm/go.sum ./
RUN grep -Eq "^[[:space:]]*helm\.sh/helm/v3 ${HELM_VERSION}( |$)" go.mod \
    || { echo "HELM_VERSION ${HELM_VERSION} is not what tools/helm/go.mod pins" >&2; exit 1; }
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -o /out/helm \
       -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
       helm.sh/helm/v3/cmd/helm \
    && /out/helm version --short

FROM python:3.11-slim AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY driftwarden driftwarden
COPY webhook webhook
COPY auditor auditor
COPY certs certs
COPY cli cli
COPY devtools devtools
# driftwarden's own wheel, then the wheels of its runtime dependencies (no dev extras) at the pinned versions.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip wheel --wheel-dir /wheels -c requirements/constraints.txt /wheels/driftwarden-*.whl

FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 driftwarden \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin driftwarden
COPY requirements/constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels /tmp/wheels
# Only the wheels built above (no index), constrained to the pinned versions.
RUN pip install --no-cache-dir --disable-pip-version-check --no-index --find-links /tmp/wheels \
       -c /tmp/constraints.txt driftwarden \
    && rm -rf /tmp/wheels /tmp/constraints.txt
COPY --from=kubectl /out/kubectl /usr/local/bin/kubectl
COPY --from=helm /out/helm /usr/local/bin/helm
# HOME=/tmp: git and helm want a writable home, and the pods mount an emptyDir there (read-only root).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 65532:65532
EXPOSE 8443 8081
# For `docker run ... webhook serve` (Kubernetes ignores HEALTHCHECK and uses the Deployment's probes).
# /healthz on the plain-HTTP probe port (8081): the admission port answers only the API server.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["python", "-c", "import os, socket\nport = int(os.environ.get('DRIFTWARDEN_HEALTHCHECK_PORT', '8081'))\nwith socket.create_connection(('127.0.0.1', port), timeout=3) as conn:\n    conn.sendall(b'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n')\n    raise SystemExit(0 if conn.recv(64).startswith(b'HTTP/1.1 200') else 1)\n"]
ENTRYPOINT ["driftwarden"]
CMD ["--help"]
