"""OAuth 2.0 for partner agencies: clients, tokens, scopes and the data-sharing policy.

`routes.init_app` registers the authorization server's endpoints (`/oauth/*`, `/.well-known/*`),
the clients' admin API (`/api/v1/admin/clients`) and the shared rate limiter that API
routes use through `hub.auth.guard`.
"""
