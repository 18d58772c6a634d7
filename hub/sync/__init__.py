"""The sync engine: connections to administration nodes, runs, quarantine, guards, leases
and the scheduler.

Data flow (docs/architecture.md): connector batches -> skip unchanged records by fingerprint ->
validate the rest -> quarantine invalid rows with every reason -> diff against the
registry on the programme's stable key -> apply with history events. Snapshot feeds are
staged and switched in one transaction; incremental feeds commit each batch with its
checkpoint. Guards hold suspicious runs for a person to confirm.
"""
