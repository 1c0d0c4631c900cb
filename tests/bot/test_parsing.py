"""The pure parts of the bot's input handling: command text and form fields."""

from __future__ import annotations

import ipaddress

import pytest

from bot.forms import (
    FieldErrors,
    build_request,
    check_policy,
    read_state,
    request_fields,
    request_from_fields,
)
from bot.parsing import (
    Explain,
    OpenModal,
    ParseError,
    RunCheck,
    ShowHelp,
    ShowHistory,
    parse_command,
)
from bot.views import modal as m
from diagnostics import EngineConfig, OutlookClient, Security
from tests.bot.support import form


@pytest.mark.parametrize(
    "text,host,port,security",
    [
        ("smtp.office365.com:587 starttls", "smtp.office365.com", 587, Security.STARTTLS),
        ("host.example 465 ssl", "host.example", 465, Security.SSL),
        ("mail.example.com 587 TLS", "mail.example.com", 587, Security.STARTTLS),
        ("[::1]:2525 none", "::1", 2525, Security.NONE),
        (
            "<http://smtp.example.com|smtp.example.com> auto",
            "smtp.example.com",
            None,
            Security.AUTO,
        ),
    ],
)
def test_inline_settings(text: str, host: str, port: int | None, security: Security) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, RunCheck)
    assert (parsed.request.host, parsed.request.port, parsed.request.security) == (
        host,
        port,
        security,
    )


def test_email_and_other_forms() -> None:
    parsed = parse_command("<mailto:you@contoso.com|you@contoso.com> mac noauth")
    assert isinstance(parsed, RunCheck)
    assert parsed.request.target_email == "you@contoso.com"
    assert parsed.request.client is OutlookClient.MAC and parsed.request.requires_auth is False
    assert parse_command("") == OpenModal()
    assert parse_command("   ") == OpenModal()
    assert parse_command("HELP") == ShowHelp()
    assert parse_command("history you@Contoso.com") == ShowHistory(host="contoso.com")


@pytest.mark.parametrize(
    "text,words",
    [
        ("history", "history"),
        ("history bad!host", "not a valid server name"),
        ("history [::1", "missing ']'"),
        ("explain", "Paste the error after `explain`"),
        ("explain   ", "Paste the error after `explain`"),
    ],
)
def test_errors_are_plain(text: str, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(text)
    message = str(caught.value)
    assert words in message
    assert "Traceback" not in message and "pydantic" not in message
    assert "\n" not in message and "validation error" not in message


@pytest.mark.parametrize(
    "text,words,initial",
    [
        ("smtp.example.com banana", "don't understand 'banana'", {"host": "smtp.example.com"}),
        ("smtp.example.com 70000", "out of range", {"host": "smtp.example.com"}),
        ("smtp.example.com 587 465", "Two ports", {"host": "smtp.example.com", "port": 587}),
        ("smtp.example.com ssl starttls", "one encryption", {"host": "smtp.example.com"}),
        ("bad_host!.com 587", "not a valid server name", {"host": "bad_host!.com", "port": 587}),
        ("a@b@c mac", "not an email address", {"client": "mac"}),
        ("smtp.example.com:25 587", "Two ports", {"host": "smtp.example.com", "port": 25}),
        ("smtp.example.com ²", "don't understand '²'", {}),  # isdigit() is true, int() refuses
        ("smtp.example.com ٥٨٧", "don't understand", {}),  # digits, but not the ones Outlook shows
        ("587 ssl mac", "Give the outgoing server or your email address", {"security": "ssl"}),
        ("a@x.example b@y.example", "Two email addresses", {"email": "a@x.example"}),
        ("one.example two.example", "Two servers", {"host": "one.example"}),
        ("x.example " + "word " * 20, "21 words", {"host": "x.example"}),
    ],
)
def test_unclear_text_opens_the_form_with_what_was_understood(
    text: str, words: str, initial: dict
) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, OpenModal)
    assert parsed.problems and any(words in p for p in parsed.problems), parsed.problems
    for key, value in initial.items():
        assert parsed.initial[key] == value
    for problem in parsed.problems:
        assert "\n" not in problem and "pydantic" not in problem and "Value error" not in problem


@pytest.mark.parametrize(
    "text",
    [
        "me@example.com smtp.example.com 465 ssl mac",
        "smtp.example.com:465 ssl mac me@example.com",
        "mac ssl 465 me@example.com <http://smtp.example.com|smtp.example.com>",
        "<mailto:me@example.com|me@example.com>, smtp.example.com, 465, SSL, Mac",
        "outlook mac smtp.example.com ssl 465 me@example.com",
    ],
)
def test_settings_in_any_order(text: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, RunCheck), parsed
    request = parsed.request
    assert (request.host, request.port, request.security) == ("smtp.example.com", 465, Security.SSL)
    assert request.email == "me@example.com" and request.client is OutlookClient.MAC


def test_the_issue_s_example_line() -> None:
    parsed = parse_command("mail.example.com:587 starttls me@example.com")
    assert isinstance(parsed, RunCheck)
    request = parsed.request
    assert (request.host, request.port, request.security, request.email) == (
        "mail.example.com",
        587,
        Security.STARTTLS,
        "me@example.com",
    )


def test_a_bare_intranet_name_first_is_the_server() -> None:
    parsed = parse_command("exchange01 587 starttls")
    assert isinstance(parsed, RunCheck) and parsed.request.host == "exchange01"


def test_explain_keeps_the_pasted_error_whole() -> None:
    pasted = "Task 'smtp.example.com - Sending' reported error (0x800CCC0F) :\n'The connection"
    parsed = parse_command(f"Explain {pasted}")
    assert parsed == Explain(error_text=pasted)
    assert parse_command("explain &lt;0x800CCC0E&gt;") == Explain(error_text="<0x800CCC0E>")


def test_explain_takes_the_outlook_named_first_or_last() -> None:
    assert parse_command("explain mac 0x800CCC0F") == Explain("0x800CCC0F", OutlookClient.MAC)
    assert parse_command("explain 0x800CCC0F iPhone") == Explain("0x800CCC0F", OutlookClient.IOS)
    assert parse_command("explain 0x800CCC0F") == Explain("0x800CCC0F", OutlookClient.CLASSIC)
    with pytest.raises(ParseError, match="Paste the error"):
        parse_command("explain mac")


def test_form_to_request() -> None:
    fields = read_state(
        form(
            email="you@contoso.com",
            server="SMTP.Example.com",
            port="other",
            port_other="2525",
            security="ssl",
            auth=m.AUTH_OPTION,
            user="you",
            client="ios",
            error_text="0x800CCC0F\nline two",
        )
    )
    request = build_request(fields)
    assert (request.host, request.port, request.security) == (
        "smtp.example.com",
        2525,
        Security.SSL,
    )
    assert request.client is OutlookClient.IOS and request.requires_auth
    assert request.error_text == "0x800CCC0F\nline two"
    assert request.user_reports_failure is False
    again = request_from_fields(request_fields(request))
    assert again == request
    assert "password" not in request_fields(request)


def test_fails_here_box_reaches_the_engine_request_and_survives_a_rerun() -> None:
    values = form(server="smtp.example.com", port="587", security="starttls")
    values[m.FAILS_HERE] = {
        m.VALUE: {"type": "checkboxes", "selected_options": [{"value": m.FAILS_HERE_OPTION}]}
    }
    request = build_request(read_state(values))
    assert request.user_reports_failure is True
    stored = request_fields(request)
    assert stored["fails_here"] is True
    assert request_from_fields(stored).user_reports_failure is True
    # Rows stored before the box reached the engine have no key: the box was not ticked.
    legacy = {k: v for k, v in stored.items() if k != "fails_here"}
    assert request_from_fields(legacy).user_reports_failure is False


@pytest.mark.parametrize(
    "values",
    [
        {m.SERVER: "smtp.example.com"},  # a block that is not an object
        {m.SERVER: [None], m.PORT: 5},
        {m.AUTH: {m.VALUE: {"selected_options": 7}}},  # options that are not a list
        {m.PORT: {m.VALUE: {"selected_option": "587"}}},
    ],
)
def test_form_state_of_the_wrong_shape_reads_as_empty(values: dict) -> None:
    fields = read_state(values)
    assert fields["host"] is None and fields["port"] is None
    assert fields["requires_auth"] is False and fields["fails_here"] is False
    with pytest.raises(FieldErrors) as caught:
        build_request(fields)
    assert m.SERVER in caught.value.errors


@pytest.mark.parametrize(
    "fields,block",
    [
        ({"server": "bad host"}, m.SERVER),
        ({"server": "ok.example", "email": "nope"}, m.EMAIL),
        ({"server": "ok.example", "user": "a\r\nMAIL FROM:<x>"}, m.USER),
        ({"server": "ok.example\r\nRSET"}, m.SERVER),
        ({"server": "ok.example", "port": "other"}, m.PORT_OTHER),
        ({"server": "ok.example", "port": "other", "port_other": "99999"}, m.PORT_OTHER),
        ({"server": "ok.example", "security": "bogus"}, m.SECURITY),
        ({}, m.SERVER),
    ],
)
def test_form_errors_land_on_the_right_block(fields: dict, block: str) -> None:
    with pytest.raises(FieldErrors) as caught:
        build_request(read_state(form(**fields)))
    assert block in caught.value.errors
    message = caught.value.errors[block]
    assert message and "\n" not in message and not message.startswith("Value error")


def test_policy_errors_for_literal_addresses_and_ports() -> None:
    strict = EngineConfig(_env_file=None)
    with pytest.raises(FieldErrors) as caught:
        check_policy(build_request({"host": "127.0.0.1"}), strict)
    assert m.SERVER in caught.value.errors
    with pytest.raises(FieldErrors) as caught:
        check_policy(build_request({"host": "0x7f.1"}), strict)  # another spelling of loopback
    assert m.SERVER in caught.value.errors
    with pytest.raises(FieldErrors) as caught:
        check_policy(
            build_request({"host": "smtp.example.com", "port": "8080"}),
            strict,
            port_block=m.PORT_OTHER,
        )
    assert m.PORT_OTHER in caught.value.errors
    relaxed = EngineConfig(_env_file=None, allow_targets=(ipaddress.ip_network("127.0.0.0/8"),))
    check_policy(build_request({"host": "127.0.0.1"}), relaxed)  # no exception
