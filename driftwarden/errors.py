"""The one exception hierarchy of driftwarden; every adapter raises these, chained with ``from``.

Orchestration decides what to do with them: the webhook turns request errors into 4xx responses, the
auditor retries ``TemporaryError`` with backoff and reports ``PermanentError`` as a condition.
This module must not import anything beyond the standard library.
"""

from __future__ import annotations


class DriftwardenError(Exception):
    """Base of every error driftwarden raises on purpose."""


class ConfigError(DriftwardenError):
    """A setting, flag or environment value is missing or invalid."""


class TemporaryError(DriftwardenError):
    """Something that may work when tried again (an unreachable API server or Git remote)."""


class PermanentError(DriftwardenError):
    """Something that will fail the same way until a person changes it (bad YAML, a missing path)."""


class ControlPlaneError(DriftwardenError):
    """The local etcd + kube-apiserver could not be built, found, started or stopped."""


class KubeError(DriftwardenError):
    """The Kubernetes API answered with an error or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubeUnavailableError(KubeError, TemporaryError):
    """The API server could not be reached or answered 5xx / 429."""


class LeaseLostError(TemporaryError):
    """This auditor replica no longer holds the leader Lease, so it must not write (fencing)."""


class GitError(DriftwardenError):
    """A Git operation failed."""


class GitUnreachableError(GitError, TemporaryError):
    """The remote could not be reached; the last good revision stays in use."""


class RevisionNotFoundError(GitError, PermanentError):
    """``targetRevision`` names no branch, tag or commit of the repository."""


class RenderError(PermanentError):
    """Manifests in Git could not be rendered (bad YAML, a failing kustomize or helm)."""


class AdmissionRequestError(DriftwardenError):
    """An incoming admission request is malformed; the webhook answers it with a 4xx."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
