"""Pure Block Kit builders (no Slack calls): every payload is validated by slack_sdk's models."""
