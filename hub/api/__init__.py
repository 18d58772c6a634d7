"""The partner API v1: blueprint `/api/v1` (`routes`, with the admin API in
`admin_routes`), its OpenAPI document (`openapi`) and the `/docs` page (`docs`).
`routes.init_app` registers them.
"""
