"""The registry: administrations, programmes, operators, their identifiers and history.

The `Operator` row is the current state (as the hub knows it now, for today); the
append-only `OperatorEvent` history holds every assertion the hub ever recorded, each
with the date it took effect (valid time) and the time the hub recorded it (transaction
time). `hub.registry.history` answers "what was true on day D, as known at time T".
"""
