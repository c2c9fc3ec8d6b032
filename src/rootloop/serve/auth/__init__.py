"""Access to the dashboard and its API: local users, API tokens, sessions, CSRF, OIDC."""
