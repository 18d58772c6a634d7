"""Every model of the hub, imported in one place so that the metadata is complete.

Alembic compares `metadata` with the database; add each new models module here.
"""

from __future__ import annotations

import importlib

from hub.db import Base

MODEL_MODULES: list[str] = [
    "hub.registry.models",
    "hub.arrangements.models",
    "hub.versions",
    "hub.recognition.models",
    "hub.sync.models",
    "hub.usage",
    "hub.auth.models",
    "hub.auth.windows",
    "hub.audit.models",
    "hub.web.models",
    "hub.notify.models",
]

for _name in MODEL_MODULES:
    importlib.import_module(_name)

metadata = Base.metadata
