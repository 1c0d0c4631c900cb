"""The check form (modal) and its optional credential step: pure view builders."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    InputBlock,
    InputInteractiveElement,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.views.text import (
    PRIVATE_METADATA_MAX,
    SECTION_TEXT_MAX,
    clip,
    clip_escaped,
    md,
    modal,
    plain,
)
from diagnostics.labels import CLIENT_LABEL, SECURITY_LABEL

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
# Outlook's own labels for "Use the following type of encrypted connection", and its names.
SECURITY_CHOICES = tuple((choice.value, label) for choice, label in SECURITY_LABEL.items())
CLIENT_CHOICES = tuple(
    (client.value, label[:1].upper() + label[1:]) for client, label in CLIENT_LABEL.items()
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
    blocks: list[Block] = [
        *_problem_blocks(problems),
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
        *_port_inputs(initial.get("port")),
        _select(
            SECURITY,
            "Use the following type of encrypted connection",
            SECURITY_CHOICES,
            initial.get("security"),
            placeholder="As in Outlook",
        ),
        _checkbox(
            AUTH,
            "Authentication",
            Option(value=AUTH_OPTION, text=plain(AUTH_LABEL, 75)),
            checked=initial.get("requires_auth", True),
        ),
        _text_input(USER, "User name", "Usually your email address", initial.get("user"), 320),
        _select(
            CLIENT,
            "Which Outlook?",
            CLIENT_CHOICES,
            initial.get("client") or "classic",
            optional=False,
        ),
        _input(
            ERROR_TEXT,
            "The error Outlook showed (optional)",
            PlainTextInputElement(
                action_id=VALUE,
                multiline=True,
                max_length=ERROR_TEXT_MAX,
                initial_value=clip(error_text, ERROR_TEXT_MAX) if error_text else None,
                placeholder=plain("Paste the error message here", 150),
            ),
        ),
        _checkbox(
            FAILS_HERE,
            "Where it fails",
            Option(
                value=FAILS_HERE_OPTION,
                text=plain("It fails on my computer", 75),
                description=plain("Outlook cannot connect, or warns about a certificate", 75),
            ),
            checked=bool(initial.get("fails_here")),
        ),
    ]
    if credential_test:
        option = Option(value=CREDTEST_OPTION, text=plain("Also test my password (next step)", 75))
        blocks.append(_checkbox(CREDTEST, "Password test", option, checked=None))
    return modal(
        CHECK_CALLBACK,
        "Check Outlook sending",
        blocks,
        submit="Check",
        close="Cancel",
        private_metadata=json.dumps({"c": channel_id}),
    )


def _problem_blocks(problems: tuple[str, ...]) -> list[Block]:
    """What the command line left unclear, above the pre-filled fields."""
    if not problems:
        return []
    lines = [f":warning: {clip_escaped(p, 400)}" for p in problems[:5]]
    lines.append("I filled in what I understood: check the fields and press *Check*.")
    return [SectionBlock(text=md(clip("\n".join(lines), SECTION_TEXT_MAX)))]


def _port_inputs(port: object) -> list[Block]:
    """Outlook's port as a choice of the usual ones, and a number field for any other."""
    port_choice = str(port) if str(port) in {"587", "465", "25", "2525"} else None
    if port and not port_choice:
        port_choice = "other"
    return [
        _select(PORT, "Port", PORT_CHOICES, port_choice, placeholder="Choose the port"),
        _input(
            PORT_OTHER,
            "Other port",
            NumberInputElement(
                action_id=VALUE,
                is_decimal_allowed=False,
                min_value=1,
                max_value=65535,
                initial_value=str(port) if port_choice == "other" else None,
            ),
            hint="Only when you chose Other… above",
        ),
    ]


def _input(
    block_id: str,
    label: str,
    element: InputInteractiveElement,
    *,
    optional: bool = True,
    hint: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=plain(label, 2000),
        optional=optional or None,
        hint=plain(hint, 2000) if hint else None,
        element=element,
    )


def _text_input(
    block_id: str, label: str, placeholder: str, initial: str | None, max_length: int
) -> InputBlock:
    return _input(
        block_id,
        label,
        PlainTextInputElement(
            action_id=VALUE,
            placeholder=plain(placeholder, 150),
            max_length=max_length,
            initial_value=clip(initial, max_length) if initial else None,
        ),
    )


def _select(
    block_id: str,
    label: str,
    choices: tuple[tuple[str, str], ...],
    selected: str | None,
    *,
    placeholder: str | None = None,
    optional: bool = True,
) -> InputBlock:
    element = StaticSelectElement(
        action_id=VALUE,
        placeholder=plain(placeholder, 150) if placeholder else None,
        options=_options(choices),
        initial_option=_option(choices, selected),
    )
    return _input(block_id, label, element, optional=optional)


def _checkbox(block_id: str, label: str, option: Option, *, checked: bool | None) -> InputBlock:
    """One tickable option (CHECKED None: no initial state is sent at all)."""
    element = CheckboxesElement(
        action_id=VALUE, options=[option], initial_options=[option] if checked else None
    )
    return _input(block_id, label, element)


def credentials_modal(*, fields: dict[str, Any], channel_id: str | None) -> View:
    """Step two: the password, behind a plain warning; the step-one fields ride along."""
    metadata = pack_metadata(fields, channel_id=channel_id)
    return modal(
        CREDENTIALS_CALLBACK,
        "Test the password",
        [
            SectionBlock(text=plain(CREDENTIAL_WARNING, 3000)),
            _input(
                PASSWORD,
                "Password (visible while you type)",
                PlainTextInputElement(action_id=VALUE, max_length=512),
                optional=False,
            ),
        ],
        submit="Check",
        close="Back",
        private_metadata=metadata,
    )


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
