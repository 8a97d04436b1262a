"""The inbound webhook receiver (Greenhouse, Keap, HighLevel) and what turns its inbox into
backup runs: app.py (Starlette), inbox.py, sensor.py, catalog.py; its commands are in
orchestration/cli/webhooks.py. See docs/webhooks.md."""
