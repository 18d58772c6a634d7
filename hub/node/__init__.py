"""Tools for node owners: the conformance checker for the node protocol (``aeo-node/1``)."""

from __future__ import annotations

from hub.node.conformance import ConformanceReport, check_node

__all__ = ["ConformanceReport", "check_node"]
