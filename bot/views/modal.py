"""The check form (modal) and its optional credential step: pure view builders."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.views.text import PRIVATE_METADATA_MAX, SECTION_TEXT_MAX, clip, clip_escaped, md, plain

CHECK_CALLBACK = "smtpcheck_check"
CREDENTIALS_CALLBACK = "smtpcheck_credentials"

# block_id of each input; the action_id inside is always "value".
EMAIL, SERVER, PORT, PORT_OTHER, SECURITY = "email", "server", "port", "port_other", "security"
AUTH, USER, CLIENT, ERROR_TEXT, CREDTEST, PASSWORD = (
    "auth",
    "user",
    "client",
    "error_text",
    "credtest",
    "password",
)
FAILS_HERE = "fails_here"
FAILS_HERE_OPTION = "fails_here"
VALUE = "value"
ERROR_TEXT_MAX = 2000  # Block Kit allows 3000; leave room in private_metadata for step two

PORT_CHOICES = (
    ("587", "587 (STARTTLS, most providers)"),
    ("465", "465 (SSL/TLS)"),
    ("25", "25"),
    ("2525", "2525"),
    ("other", "Other…"),
)
# Outlook's own labels for "Use the following type of encrypted connection".
SECURITY_CHOICES = (
    ("none", "None"),
    ("ssl", "SSL/TLS"),
    ("starttls", "STARTTLS"),
    ("auto", "Auto"),
)
CLIENT_CHOICES = (
    ("classic", "Classic Outlook for Windows"),
    ("new", "New Outlook for Windows"),
    ("mac", "Outlook for Mac"),
    ("ios", "Outlook for iOS"),
    ("android", "Outlook for Android"),
)
AUTH_OPTION = "requires_auth"
AUTH_LABEL = "My outgoing server (SMTP) requires authentication"
CREDTEST_OPTION = "credential_test"
CREDENTIAL_WARNING = (
    "Optional: test your password too. Slack has no hidden password field, so what you type"
    " here is visible on your screen while you type it. smtpcheck uses it for this one check"
    " only: it is never stored, logged or shown in the report. If you would rather not, press"
    " Back and run the check without it; the report still shows what is wrong."
)


def _options(choices: tuple[tuple[str, str], ...]) -> list[Option]:
    return [Option(value=value, text=plain(label, 75)) for value, label in choices]


def _option(choices: tuple[tuple[str, str], ...], value: str | None) -> Option | None:
    for option_value, label in choices:
        if option_value == value:
            return Option(value=option_value, text=plain(label, 75))
    return None


def check_modal(
    *,
    channel_id: str | None,
    error_text: str = "",
    credential_test: bool = False,
    initial: dict[str, Any] | None = None,
    problems: tuple[str, ...] = (),
) -> View:
    """The form: Outlook's outgoing-server settings, as the user sees them in Outlook.

    INITIAL pre-fills it (e.g. what `/smtpcheck` understood); PROBLEMS say, above the
    fields, what it did not understand."""
    initial = initial or {}
    port = initial.get("port")
    port_choice = str(port) if str(port) in {"587", "465", "25", "2525"} else None
    if port and not port_choice:
        port_choice = "other"
    auth_option = Option(value=AUTH_OPTION, text=plain(AUTH_LABEL, 75))
    blocks: list[Block] = [*_problem_blocks(problems)]
    blocks += [
        SectionBlock(
            text=md(
                "Enter the settings from Outlook's *Outgoing server (SMTP)* page. Give your"
                " email address, the server, or both."
            )
        ),
        _text_input(EMAIL, "Email address", "you@contoso.com", initial.get("email"), 320),
        _text_input(
            SERVER, "Outgoing mail server (SMTP)", "smtp.office365.com", initial.get("host"), 260
        ),
        InputBlock(
            block_id=PORT,
            label=plain("Port", 2000),
            optional=True,
            element=StaticSelectElement(
                action_id=VALUE,
                placeholder=plain("Choose the port", 150),
                options=_options(PORT_CHOICES),
                initial_option=_option(PORT_CHOICES, port_choice),
            ),
        ),
        InputBlock(
            block_id=PORT_OTHER,
            label=plain("Other port", 2000),
            optional=True,
            hint=plain("Only when you chose Other… above", 2000),
            element=NumberInputElement(
                action_id=VALUE,
                is_decimal_allowed=False,
                min_value=1,
                max_value=65535,
                initial_value=str(port) if port_choice == "other" else None,
            ),
        ),
        InputBlock(
            block_id=SECURITY,
            label=plain("Use the following type of encrypted connection", 2000),
            optional=True,
            element=StaticSelectElement(
                action_id=VALUE,
                placeholder=plain("As in Outlook", 150),
                options=_options(SECURITY_CHOICES),
                initial_option=_option(SECURITY_CHOICES, initial.get("security")),
            ),
        ),
        InputBlock(
            block_id=AUTH,
            label=plain("Authentication", 2000),
            optional=True,
            element=CheckboxesElement(
                action_id=VALUE,
                options=[auth_option],
                initial_options=[auth_option] if initial.get("requires_auth", True) else None,
            ),
        ),
        _text_input(USER, "User name", "Usually your email address", initial.get("user"), 320),
        InputBlock(
            block_id=CLIENT,
            label=plain("Which Outlook?", 2000),
            element=StaticSelectElement(
                action_id=VALUE,
                options=_options(CLIENT_CHOICES),
                initial_option=_option(CLIENT_CHOICES, initial.get("client") or "classic"),
            ),
        ),
        InputBlock(
            block_id=ERROR_TEXT,
            label=plain("The error Outlook showed (optional)", 2000),
            optional=True,
            element=PlainTextInputElement(
                action_id=VALUE,
                multiline=True,
                max_length=ERROR_TEXT_MAX,
                initial_value=clip(error_text, ERROR_TEXT_MAX) if error_text else None,
                placeholder=plain("Paste the error message here", 150),
            ),
        ),
    ]
    fails_option = Option(
        value=FAILS_HERE_OPTION,
        text=plain("It fails on my computer", 75),
        description=plain("Outlook cannot connect, or warns about a certificate", 75),
    )
    blocks.append(
        InputBlock(
            block_id=FAILS_HERE,
            label=plain("Where it fails", 2000),
            optional=True,
            element=CheckboxesElement(
                action_id=VALUE,
                options=[fails_option],
                initial_options=[fails_option] if initial.get("fails_here") else None,
            ),
        )
    )
    if credential_test:
        option = Option(value=CREDTEST_OPTION, text=plain("Also test my password (next step)", 75))
        blocks.append(
            InputBlock(
                block_id=CREDTEST,
                label=plain("Password test", 2000),
                optional=True,
                element=CheckboxesElement(action_id=VALUE, options=[option]),
            )
        )
    view = View(
        type="modal",
        callback_id=CHECK_CALLBACK,
        title=plain("Check Outlook sending", 24),
        submit=plain("Check", 24),
        close=plain("Cancel", 24),
        blocks=blocks,
        private_metadata=json.dumps({"c": channel_id}),
    )
    view.validate_json()
    return view


def _problem_blocks(problems: tuple[str, ...]) -> list[Block]:
    """What the command line left unclear, above the pre-filled fields."""
    if not problems:
        return []
    lines = [f":warning: {clip_escaped(p, 400)}" for p in problems[:5]]
    lines.append("I filled in what I understood: check the fields and press *Check*.")
    return [SectionBlock(text=md(clip("\n".join(lines), SECTION_TEXT_MAX)))]


def _text_input(
    block_id: str, label: str, placeholder: str, initial: str | None, max_length: int
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=plain(label, 2000),
        optional=True,
        element=PlainTextInputElement(
            action_id=VALUE,
            placeholder=plain(placeholder, 150),
            max_length=max_length,
            initial_value=clip(initial, max_length) if initial else None,
        ),
    )


def credentials_modal(*, fields: dict[str, Any], channel_id: str | None) -> View:
    """Step two: the password, behind a plain warning; the step-one fields ride along."""
    metadata = pack_metadata(fields, channel_id=channel_id)
    view = View(
        type="modal",
        callback_id=CREDENTIALS_CALLBACK,
        title=plain("Test the password", 24),
        submit=plain("Check", 24),
        close=plain("Back", 24),
        blocks=[
            SectionBlock(text=plain(CREDENTIAL_WARNING, 3000)),
            InputBlock(
                block_id=PASSWORD,
                label=plain("Password (visible while you type)", 2000),
                element=PlainTextInputElement(action_id=VALUE, max_length=512),
            ),
        ],
        private_metadata=metadata,
    )
    view.validate_json()
    return view


def pack_metadata(fields: dict[str, Any], *, channel_id: str | None) -> str:
    """Step-one fields as JSON within Slack's 3000-character private_metadata."""
    kept = {k: v for k, v in fields.items() if v not in (None, "")}
    data: dict[str, Any] = {"c": channel_id, "f": kept}
    text = json.dumps(data, separators=(",", ":"))
    error_text = kept.get("error_text")
    while len(text) > PRIVATE_METADATA_MAX and error_text:
        # The error text only helps matching; the settings themselves must survive whole.
        error_text = error_text[: max(0, len(error_text) - (len(text) - PRIVATE_METADATA_MAX) - 8)]
        kept["error_text"] = error_text
        text = json.dumps(data, separators=(",", ":"))
    return text


def unpack_metadata(text: str | None) -> tuple[str | None, dict[str, Any]]:
    """(channel_id, step-one fields) from private_metadata; tolerant of garbage."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return None, {}
    if not isinstance(data, dict):
        return None, {}
    channel, fields = data.get("c"), data.get("f")
    return (
        channel if isinstance(channel, str) else None,
        fields if isinstance(fields, dict) else {},
    )
