"""App Home: publish the user's recent checks and how to use the bot."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.listeners._common import Asker
from bot.views.home import RecentCheck, home_view

log = logging.getLogger("smtpcheck.bot")


async def app_home_opened(
    event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: Any
) -> None:
    if event.get("tab", "home") != "home":
        return
    deps = deps_of(context)
    asker = Asker.of(context)
    user_id, team_id = asker.user_id, asker.team_id
    rows = await deps.store.recent_for_user(team_id=team_id, user_id=user_id, limit=10)
    recent = []
    for row in rows:
        report = row.report or {}
        data = report.get("input", {})
        target = data.get("host") or data.get("target") or "?"
        if data.get("port"):
            target = f"{target}:{data['port']}"
        problem = next(
            (f.get("title") for f in report.get("findings", []) if f.get("severity") == "error"),
            None,
        )
        recent.append(
            RecentCheck(
                target=target,
                verdict=str(report.get("verdict", "?")),
                created_at=row.created_at,
                top_problem=problem,
            )
        )
    # A failure is logged by the app's error handler; the next visit publishes again.
    await client.views_publish(user_id=user_id, view=home_view(recent))
