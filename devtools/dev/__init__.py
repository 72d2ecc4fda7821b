"""The whole product on one machine: ``driftwarden dev up`` (the stack) and ``driftwarden demo``
(the story)."""
