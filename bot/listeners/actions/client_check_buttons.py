"""The client-check buttons: show the read-only script for Windows or Mac, open the paste form."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import ValidationError
from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.deps import deps_of
from bot.listeners._common import (
    Asker,
    button_value,
    diagnosis_or_tell,
    in_a_modal,
    open_view_or_tell,
)
from bot.views.client_check import ScriptTooLong, paste_view, script_view
from bot.views.report import CLIENT_SCRIPT_WINDOWS_ACTION
from diagnostics import InputError, Report

log = logging.getLogger("smtpcheck.bot")


async def show_client_script(args: AsyncArgs) -> None:
    await args.ack()
    client, context = args.client, args.context
    asker = Asker.of(context)
    diagnosis_id = button_value(args)
    pressed = (args.action or {}).get("action_id")
    platform: Literal["windows", "mac"] = (
        "windows" if pressed == CLIENT_SCRIPT_WINDOWS_ACTION else "mac"
    )
    row = await diagnosis_or_tell(context, client, diagnosis_id, asker=asker)
    if row is None:
        return
    try:
        view = script_view(Report.model_validate(row.report), platform, diagnosis_id=diagnosis_id)
    except (InputError, ValidationError, ScriptTooLong) as exc:
        log.warning("no client check for %s: %s", diagnosis_id, exc)
        await asker.tell(
            client,
            "I cannot write a check from your computer for this server. Please escalate"
            " to the help desk.",
        )
        return
    try:
        await deps_of(context).store.audit(
            team_id=asker.team_id,
            user_id=asker.user_id,
            action="client_script",
            host=row.host,
            port=row.port,
            address=None,
            detail={"diagnosis_id": diagnosis_id, "platform": platform},
        )
    except Exception:  # the audit row must not cost the user the script
        log.warning("audit of client_script failed", exc_info=True)
    await open_view_or_tell(
        client,
        body=args.body,
        view=view,
        asker=asker,
        push=in_a_modal(args.body),
        retry="Slack did not let me open the check in time; press the button again.",
    )


async def open_client_paste(args: AsyncArgs) -> None:
    await args.ack()
    await open_view_or_tell(
        args.client,
        body=args.body,
        view=paste_view(diagnosis_id=button_value(args)),
        asker=Asker.of(args.context),
        push=in_a_modal(args.body),
        retry="Slack did not let me open the form in time; press *Paste the result* again.",
    )
