"""gunicorn settings for the hub: `gunicorn -c config/gunicorn.conf.py 'hub:create_app()'`.

Bind address and worker count stay on the command line (`-b`, `-w`) or in
`GUNICORN_CMD_ARGS`; this file holds what every deployment of the hub wants.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from gunicorn.workers.sync import SyncWorker

from hub.db import EXTENSION_KEY
from hub.metrics import child_exit as _metrics_child_exit
from hub.settings import ConfigurationError
from hub.settings import check_config as check_hub_config  # gunicorn has a check_config

# Sync workers: a request holds its worker for a few milliseconds; scale with `-w`.
worker_class = "sync"


def on_starting(server: Any) -> None:
    """Check the configuration once, before any worker starts: a configuration that cannot
    be used stops gunicorn with one short message (every problem) and exit status 1,
    instead of a traceback per worker."""
    try:
        checked = check_hub_config()
    except ConfigurationError as exc:
        print(exc.report(), file=sys.stderr)
        sys.exit(1)
    for warning in checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def post_worker_init(worker: Any) -> None:
    """Move everything the worker built while loading the app out of the collector's way.

    The app, its models, schemas and libraries are a few hundred thousand objects that
    live as long as the worker; without this, each full collection walks all of them
    again (tens of milliseconds, felt by the request that triggers it). Frozen objects are
    still freed by reference counting; only the cyclic collector skips them.
    """
    gc.collect()
    gc.freeze()
    keep_reader(worker)


def keep_reader(worker: Any) -> None:
    """A sync worker serves one request at a time on one thread for its whole life: its
    request reader and that reader's pooled connection are kept from one request to the
    next (`hub.db.Database.keep_reader`)."""
    extensions = getattr(worker.wsgi, "extensions", None) or {}
    if isinstance(worker, SyncWorker) and EXTENSION_KEY in extensions:
        extensions[EXTENSION_KEY].keep_reader = True


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live metrics (Prometheus multiprocess mode)."""
    _metrics_child_exit(server, worker)
