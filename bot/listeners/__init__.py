"""Bolt listeners, one package per kind, each with `register(app)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, events, shortcuts, views


def register_listeners(app: AsyncApp) -> None:
    commands.register(app)
    shortcuts.register(app)
    views.register(app)
    actions.register(app)
    events.register(app)
