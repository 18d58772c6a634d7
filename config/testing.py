"""Settings for the test suite: a throwaway database chosen by the fixtures."""

from __future__ import annotations

ENV = "testing"
TESTING = True
SECRET_KEY = "aeohub-testing-key"  # noqa: S105
# Small so that the request size limit can be tested cheaply.
MAX_CONTENT_LENGTH = 1024 * 1024
LOG_LEVEL = "WARNING"
# Usage counts and audited reads are written at once, so that tests can read them.
USAGE_FLUSH_SECONDS = 0
