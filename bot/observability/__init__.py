"""What the operator sees of the running bot, one concern per module:

- `redaction`: secrets out of any text or structure (log records, health text, stored rows);
- `logs`: one redacting handler per process, JSON or readable, with request/diagnosis ids;
- `metrics`: the Prometheus registry and the instrumented Slack Web API client;
- `health`: the readiness/liveness state behind GET /health.

Nothing is imported here, so `logs` and `redaction` stay light enough for the terminal
commands (which never load Slack).
"""
