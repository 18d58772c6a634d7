"""Default settings: the embedded profile (SQLite in `instance/`, everything on loopback).

Every setting here can be overridden by an environment variable with the `AEOHUB_` prefix,
e.g. `AEOHUB_DATABASE_URL`. A value from the environment is parsed as the setting's type
(its annotation here, else the type of its default): integers, decimals, booleans
(true/false, 1/0, yes/no), lists (a JSON array or comma-separated), and for a setting that
may be None, an empty value means None. `aeohub config check` reports every problem.
"""

from __future__ import annotations

# The well-known development key. `production` refuses to start with it.
DEFAULT_SECRET_KEY = "aeohub-development-key-do-not-use-in-production"  # noqa: S105

ENV = "default"
SECRET_KEY = DEFAULT_SECRET_KEY
# None means SQLite in the instance folder (instance/aeohub.sqlite3).
DATABASE_URL: str | None = None
# Echo SQL (debugging only).
DATABASE_ECHO = False

# Earlier secret keys, still accepted for cookies signed before a key rotation.
SECRET_KEY_FALLBACKS: list[str] = []

# Largest request body accepted, in bytes (413 beyond).
MAX_CONTENT_LENGTH = 16 * 1024 * 1024

# Key that encrypts connection secrets at rest (Fernet, urlsafe base64 of 32 bytes).
# None in the embedded profile derives one from SECRET_KEY; production must set it.
ENCRYPTION_KEY: str | None = None

# Where connections may read local files from; None means the instance folder's imports/.
IMPORT_DIR: str | None = None

# Hosts every connection may reach in addition to its administration's own node hosts.
# The embedded profile runs simulated nodes on loopback; production allows none by default.
NODE_HOSTS_ALLOWED: list[str] = ["127.0.0.1", "localhost"]

# Log format: "json" (structured, one object per line) or "text".
LOG_FORMAT = "text"
LOG_LEVEL = "INFO"

# A feed older than this many seconds is stale unless its connection says otherwise.
DEFAULT_STALENESS_SECONDS = 36 * 3600

# A sync's lease on its connection lasts this long unless renewed (its heartbeat renews
# it every third of that); a killed run's lease expires after it.
SYNC_LEASE_SECONDS = 60
# Threads of the scheduler process for the syncs it starts outside their schedule's own
# fire: notified runs, and catch-ups of slots missed, busy, failed or whose run died. At
# least 1; with many connections on PostgreSQL, more catch up faster after an outage
# (SQLite runs one writer at a time whatever this is).
SCHEDULER_WORKERS = 2
# Jobs other packages add to the scheduler process: "module:function", called with the
# APScheduler scheduler and the database (the change feed's view changes).
SCHEDULER_JOBS = ["hub.notify.views:add_jobs"]

# Partner look-up counts and audited reads are buffered per process and written this
# often (seconds); 0 writes them with each request.
USAGE_FLUSH_SECONDS = 1.0
# ... or as soon as this many audited reads are waiting (a count of reads). This bounds a
# write, and with it the wait of the requests queued behind it on a sync worker; a smaller
# number means shorter waits but more writes in all.
USAGE_FLUSH_BATCH = 200

# The key that signs the audit chain's head (Ed25519: a base64url 32-byte seed or a PEM
# key; `aeohub keys generate` prints one). Required in production; elsewhere derived from
# SECRET_KEY.
AUDIT_SIGNING_KEY: str | None = None

# Partner API: quota units per client per window (a client's own limit overrides it), what
# a request costs, what each trader of a batch costs (a batch costs at least a request),
# and the largest body of a single (not batch) request, in bytes. The default quota lets
# a client send a full batch of 10,000 traders, twice a minute.
RATE_LIMIT_REQUESTS = 20000
RATE_LIMIT_WINDOW_SECONDS = 60
RATE_LIMIT_REQUEST_COST = 1
RATE_LIMIT_BATCH_ITEM_COST = 1
API_MAX_BODY_BYTES = 64 * 1024

# Public look-ups and dashboard sign-ins allowed per address per window.
WEB_LOOKUP_LIMIT = 30
WEB_LOOKUP_WINDOW_SECONDS = 60
WEB_LOGIN_LIMIT = 10
WEB_LOGIN_WINDOW_SECONDS = 300
# Production marks the session cookie Secure; True keeps it off (plain-http test set-ups).
WEB_INSECURE_COOKIES = False

# Webhooks: hosts they may reach (None: NODE_HOSTS_ALLOWED), the time one delivery may
# take, retries with exponential back-off, and when a failing subscription is paused.
WEBHOOK_HOSTS_ALLOWED: list[str] | None = None
# Production delivers to public addresses only; these networks (CIDR, e.g. an agency's
# 10.20.0.0/16) are allowed too. Never the hub's or its database's own address and port.
WEBHOOK_PRIVATE_NETWORKS_ALLOWED: list[str] = []
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_RETRY_BASE_SECONDS = 5.0
WEBHOOK_RETRY_MAX_SECONDS = 3600.0
WEBHOOK_MAX_ATTEMPTS = 12
WEBHOOK_PAUSE_AFTER_FAILURES = 20

# After `clients rotate-secret`, the previous secret is still accepted this many seconds
# (the partner rolls its deployments over); 0 refuses it at once.
CLIENT_SECRET_OVERLAP_SECONDS = 24 * 3600

# A bearer token that /metrics requires (at least 32 characters; `aeohub keys generate`
# prints one). None leaves /metrics open to anyone who reaches the web port.
METRICS_TOKEN: str | None = None

# Access tokens live this many seconds.
TOKEN_LIFETIME_SECONDS = 900
# Issuing and revoking tokens wait at most this many seconds for the database's locks (a
# sync may hold them), then answer 503 with Retry-After: never a 500, never a revocation
# reported done that was not.
OAUTH_WRITE_WAIT_SECONDS = 5.0
# Failed client authentications allowed per window, from one address and for one client
# from one address; beyond them the OAuth endpoints answer 429 with Retry-After until the
# window ends. A client is never throttled by failures from other addresses.
OAUTH_FAILURES_PER_ADDRESS = 30
OAUTH_FAILURES_PER_CLIENT_ADDRESS = 5
OAUTH_FAILURE_WINDOW_SECONDS = 300

# A dashboard session ends after this many seconds without a request (idle) and this many
# seconds after signing in (absolute), whatever happens in between.
WEB_SESSION_IDLE_SECONDS = 30 * 60
WEB_SESSION_ABSOLUTE_SECONDS = 12 * 3600

# The hub's public base URL (e.g. https://aeohub.example.org): the OAuth issuer, the base of
# the server metadata's endpoints, the audience private_key_jwt assertions must name (its
# /oauth/token) and the OpenAPI server. Required in production; never taken from the
# request's Host header. Unset elsewhere: the address `aeohub serve`/`demo` listen on.
ISSUER: str | None = None

# How many reverse proxies in front of the hub to trust (werkzeug's ProxyFix): their
# X-Forwarded-For gives the caller's address (rate limits, throttling, logs) and
# X-Forwarded-Proto the scheme. 0 (no proxy) ignores those headers, which any caller can
# send. Set it to exactly the number of proxies that append to them.
TRUSTED_PROXIES = 0

# Who runs this hub, shown in every web page's footer, with a contact (an e-mail address
# or a URL) and the address of the privacy notice (None: the hub's own /privacy page).
HUB_ADMINISTRATOR = "the AEO Hub administrator"
SITE_CONTACT: str | None = None
SITE_PRIVACY_URL: str | None = None
