"""The whole product on one machine: ``driftwarden dev up`` (the stack) and ``driftwarden demo``
(the story)."""

BREAKGLASS_GROUP = "sre-breakglass"
"""The group ``dev up`` makes ``sre`` a member of, and the webhook lets through with a warning."""
