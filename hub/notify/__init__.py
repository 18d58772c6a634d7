"""Node push and signed webhooks: suspensions reach partners in seconds.

- `push`: `POST /api/v1/nodes/notify` marks a connection for an immediate sync, which the
  scheduler process runs (coalescing notifications that arrive during a run).
- `events`: the dispatcher derives webhook events from the change feed (through the
  data-sharing policy of each subscribing client) and from sync runs.
- `delivery`: signed, ordered, retried, logged deliveries; failing subscriptions pause.
- `worker`: the `aeohub worker` process that dispatches and delivers (never web workers).
- `signing`: sign and verify (`verify(secret, headers, body, tolerance=300)`).
"""
