"""Buttons on a report: Re-run, Technical details (and its pages), Escalate, and Enter the
server name (when no outgoing server could be found for the address)."""

from __future__ import annotations

from pydantic import ValidationError
from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.deps import deps_of
from bot.escalation import escalate as post_escalation
from bot.forms import request_from_fields
from bot.listeners._common import Asker, button_value, diagnosis_or_tell, open_view_or_tell
from bot.runner import Job
from bot.views.details import details_view
from bot.views.modal import check_modal


async def rerun(args: AsyncArgs) -> None:
    await args.ack()
    asker = Asker.of(args.context)
    diagnosis_id = button_value(args)
    row = await diagnosis_or_tell(args.context, args.client, diagnosis_id, asker=asker)
    if row is None:
        return
    try:
        request = request_from_fields(row.request)
    except (ValidationError, KeyError, TypeError):
        await asker.tell(args.client, "I cannot re-run that check; please run `/smtpcheck` again.")
        return
    await deps_of(args.context).runner.submit(
        Job(
            team_id=asker.team_id,
            user_id=asker.user_id,
            channel_id=row.channel_id,
            request=request,
            source="rerun",
            thread_ts=row.thread_ts,
            previous_id=diagnosis_id,
        ),
        client=args.client,
    )


async def details(args: AsyncArgs) -> None:
    await args.ack()
    diagnosis_id = button_value(args)
    row = await diagnosis_or_tell(
        args.context, args.client, diagnosis_id, gone="That check is no longer stored."
    )
    if row is None:
        return
    await open_view_or_tell(
        args.client,
        body=args.body,
        view=details_view(row.report, diagnosis_id=diagnosis_id),
        asker=Asker.of(args.context),
        retry="Slack did not let me open the details in time; press the button again.",
    )


async def details_page(args: AsyncArgs) -> None:
    """Older or newer page of Technical details, in the modal that is open (no answer when
    the check is gone: the modal still shows the page it had)."""
    await args.ack()
    diagnosis_id, _, page = str((args.action or {}).get("value") or "").partition(":")
    row = await deps_of(args.context).store.get_diagnosis(diagnosis_id[:64])
    view = args.body.get("view") or {}
    if row is None or not (page.isascii() and page.isdigit()):
        return
    await args.client.views_update(  # a failure is logged by the app's error handler
        view_id=view.get("id"),
        hash=view.get("hash"),
        view=details_view(row.report, diagnosis_id=diagnosis_id, page=int(page)),
    )


async def escalate(args: AsyncArgs) -> None:
    await args.ack()
    deps = deps_of(args.context)
    asker = Asker.of(args.context)
    await deps.runner.saved(button_value(args))  # a report may be out before its row
    await post_escalation(
        client=args.client,
        store=deps.store,
        settings=deps.settings,
        diagnosis_id=button_value(args),
        team_id=asker.team_id,
        user_id=asker.user_id,
        channel_id=asker.channel_id,
    )


async def enter_server(args: AsyncArgs) -> None:
    """No outgoing server found: the form, with the address (and the rest of the stored
    request) filled in, for the server name the provider gives."""
    await args.ack()
    asker = Asker.of(args.context)
    row = await diagnosis_or_tell(args.context, args.client, button_value(args), asker=asker)
    if row is None:
        return
    fields = row.request if isinstance(row.request, dict) else {}
    target = str(fields.get("target") or "")
    initial = {
        "email": fields.get("email") or (target if "@" in target else None),
        "port": fields.get("port"),
        "security": fields.get("security"),
    }
    view = check_modal(
        channel_id=row.channel_id,
        credential_test=deps_of(args.context).settings.credential_test,
        initial={k: v for k, v in initial.items() if v},
    )
    await open_view_or_tell(
        args.client,
        body=args.body,
        view=view,
        asker=asker,
        retry="Slack did not let me open the form in time; press the button again.",
    )
