"""Git push webhooks (GitHub, GitLab, Gitea): verify, match, refresh."""
