"""The settings of the admission decision: profile, GitOps identities, break-glass, default mode, strictness.

Role: one frozen, validated value that webhook.admission.decision reads. The CLI builds it from flags and the
environment (``make_settings``); invalid values raise ConfigError with a message a person can act on.

This module must not read os.environ, files or flags, log, or await: it only validates what it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, cast

from driftwarden import contract
from driftwarden.errors import ConfigError
from webhook.admission.profiles import Profile, get_profile

GuardMode = Literal["enforce", "warn", "off"]

# Groups that every requester, every service account or every cluster admin is in: naming one as
# break-glass would switch the guard off for the very people it exists to stop.
EVERYONE_GROUPS = frozenset(
    {"system:authenticated", "system:unauthenticated", "system:serviceaccounts", "system:masters"}
)


def parse_mode(value: object) -> GuardMode | None:
    """A guard mode from an annotation or flag value (case and spaces ignored); None if it is none."""
    if not isinstance(value, str):
        return None
    mode = value.strip().lower()
    return cast(GuardMode, mode) if mode in contract.GUARD_MODES else None


@dataclass(frozen=True)
class DecisionSettings:
    """What webhook.admission.decision needs besides the request.

    ``default_mode`` applies to objects without a ``driftwarden.io/guard`` annotation. ``strict`` makes
    every out-of-band change to a managed object a violation, owned by Git or not.
    """

    profile: Profile
    gitops_identities: frozenset[str]
    breakglass_users: frozenset[str] = field(default_factory=frozenset)
    breakglass_groups: frozenset[str] = field(default_factory=frozenset)
    default_mode: GuardMode = "enforce"
    strict: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile):
            raise ConfigError(f"profile must be a Profile, not {type(self.profile).__name__}")
        _check_names("gitops identity", self.gitops_identities, required=True)
        _check_names("break-glass user", self.breakglass_users)
        _check_names("break-glass group", self.breakglass_groups)
        if parse_mode(self.default_mode) != self.default_mode:
            modes = ", ".join(contract.GUARD_MODES)
            raise ConfigError(f"default guard mode {self.default_mode!r} is not one of: {modes}")
        if not isinstance(self.strict, bool):
            raise ConfigError(f"strict must be true or false, not {self.strict!r}")
        if overlap := self.gitops_identities & self.breakglass_users:
            raise ConfigError(f"users cannot be both GitOps identity and break-glass: {sorted(overlap)}")
        if broad := self.breakglass_groups & EVERYONE_GROUPS:
            raise ConfigError(
                f"break-glass group {sorted(broad)[0]!r} holds (nearly) every requester or administrator;"
                " naming it would switch the guard off"
            )


def _check_names(what: str, names: object, *, required: bool = False) -> None:
    if not isinstance(names, frozenset):
        raise ConfigError(f"{what} list must be a frozenset, not {type(names).__name__}")
    if required and not names:
        raise ConfigError(f"at least one {what} is required, or the GitOps tool itself would be blocked")
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ConfigError(f"{what} {name!r} must be a non-empty name without surrounding spaces")


def make_settings(
    *,
    profile: str | Profile = "driftwarden",
    gitops_identities: Iterable[str] | None = None,
    breakglass_users: Iterable[str] = (),
    breakglass_groups: Iterable[str] = (),
    default_mode: str = "enforce",
    strict: bool = False,
) -> DecisionSettings:
    """Build validated settings; ``gitops_identities`` defaults to the profile's default identities."""
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    mode = parse_mode(default_mode)
    if mode is None:
        modes = ", ".join(contract.GUARD_MODES)
        raise ConfigError(f"default guard mode {default_mode!r} is not one of: {modes}")
    identities = chosen.default_identities if gitops_identities is None else gitops_identities
    return DecisionSettings(
        profile=chosen,
        gitops_identities=_names(identities),
        breakglass_users=_names(breakglass_users),
        breakglass_groups=_names(breakglass_groups),
        default_mode=mode,
        strict=strict,
    )


def _names(values: Iterable[str]) -> frozenset[str]:
    # A bare string is iterable too; splitting it into characters would be a silent misconfiguration.
    if isinstance(values, str):
        raise ConfigError(f"expected a list of names, got the single string {values!r}")
    return frozenset(values)
