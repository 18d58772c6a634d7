"""Connector plugins: how the hub reads an administration's AEO registry.

`connectors.base` holds the contract (spec/check/discover/read after Airbyte) and the
canonical record; `connectors.catalogue` finds plugins through the entry-point group
``aeohub.connectors``. Connectors never import the hub or Flask: they turn a source into
batches of canonical records and know nothing of databases.
"""

from __future__ import annotations
