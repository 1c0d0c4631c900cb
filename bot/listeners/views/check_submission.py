"""Form submissions: validate (errors on the right block), ack, hand the job to the runner."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.forms import (
    FieldErrors,
    build_request,
    check_policy,
    read_state,
    state_element,
    state_values,
)
from bot.listeners._common import Asker
from bot.observability.redaction import register_secret
from bot.runner import Job
from bot.views import modal as m
from diagnostics import CheckRequest


async def check_submission(
    ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    deps = deps_of(context)
    fields = read_state(state_values(view))
    channel_id, _ = m.unpack_metadata(view.get("private_metadata"))
    port_block = m.PORT_OTHER if fields.get("port_choice") == "other" else m.PORT
    try:
        request = build_request(fields)
        check_policy(request, deps.engine_config, port_block=port_block)
    except FieldErrors as exc:
        await ack(response_action="errors", errors=exc.errors)
        return
    if deps.settings.credential_test and fields.get("credential_test"):
        if not request.user and not request.email:
            await ack(
                response_action="errors",
                errors={m.USER: "Enter the user name to test the password with"},
            )
            return
        fields.pop("credential_test", None)
        await ack(
            response_action="push", view=m.credentials_modal(fields=fields, channel_id=channel_id)
        )
        return
    await ack()
    await _submit(context, client, request, channel_id=channel_id)


async def credentials_submission(
    ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    deps = deps_of(context)
    if not deps.settings.credential_test:
        await ack(
            response_action="errors",
            errors={m.PASSWORD: "The password test is turned off on this workspace"},
        )
        return
    channel_id, fields = m.unpack_metadata(view.get("private_metadata"))
    password = state_element(state_values(view), m.PASSWORD).get("value")
    if isinstance(password, str):
        # From here on, the typed password is redacted wherever it would be logged.
        register_secret(password, runtime=True)
    if not isinstance(password, str) or not password:
        await ack(response_action="errors", errors={m.PASSWORD: "Enter the password, or go Back"})
        return
    try:
        request = build_request(fields, password=password)
        check_policy(request, deps.engine_config)
    except FieldErrors as exc:
        # The step-one blocks are not on this view: show their message on the password block.
        await ack(
            response_action="errors",
            errors={m.PASSWORD: "Go Back and fix: " + "; ".join(exc.errors.values())},
        )
        return
    finally:
        password = None  # drop our reference at once; the request holds it as a SecretStr
    if request.user is None and request.email:
        request = request.model_copy(update={"user": request.email})
    await ack(response_action="clear")
    await _submit(context, client, request, channel_id=channel_id)


async def _submit(
    context: AsyncBoltContext,
    client: AsyncWebClient,
    request: CheckRequest,
    *,
    channel_id: str | None,
) -> None:
    """The form's check, answered in the channel it was opened from (else the user's DM)."""
    asker = Asker.of(context)
    await deps_of(context).runner.submit(
        Job(
            team_id=asker.team_id,
            user_id=asker.user_id,
            channel_id=channel_id or asker.user_id,
            request=request,
            source="modal",
        ),
        client=client,
    )
