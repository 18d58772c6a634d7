"""Tests of the connector plugins (connectors/) and the node conformance checker."""
