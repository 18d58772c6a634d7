"""Settings for production: PostgreSQL, JSON logs, and no default secrets.

`hub.settings.load_config` refuses to start this profile with the development secret key
or without a database URL.
"""

from __future__ import annotations

ENV = "production"
LOG_FORMAT = "json"
# Must come from AEOHUB_DATABASE_URL.
DATABASE_URL = None
# Node hosts come from each administration's allowed_hosts, not from a global default.
NODE_HOSTS_ALLOWED: list[str] = []
