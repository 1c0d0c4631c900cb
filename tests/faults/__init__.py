"""Faults and hostile input (issue 5): hostile servers, target policy at the socket level,
secrets, fuzzing, Slack faults. Loopback only; no system services."""
