"""From the form's state to a validated CheckRequest, with errors keyed by block (pure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr, ValidationError

from bot.parsing import plain_validation_message
from bot.views import modal as m
from diagnostics import CheckRequest, EngineConfig, InputError, OutlookClient, Security
from diagnostics._models import (
    normalize_email,
    normalize_hostname,
    parse_port,
    reject_control_chars,
)


class FieldErrors(ValueError):
    """Form errors: block_id -> a message the user understands."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def state_element(values: Any, block_id: str, action_id: str = m.VALUE) -> dict[str, Any]:
    """One input's state from view.state.values; empty when any level has the wrong shape."""
    block = values.get(block_id) if isinstance(values, dict) else None
    element = block.get(action_id) if isinstance(block, dict) else None
    return element if isinstance(element, dict) else {}


def state_values(view: Any) -> dict[str, Any]:
    """view.state.values of a submitted view; empty when the payload has another shape."""
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def read_state(values: dict[str, Any]) -> dict[str, Any]:
    """Flatten Slack's view.state.values into plain fields (strings, bools, None)."""

    def raw(block_id: str) -> dict[str, Any]:
        return state_element(values, block_id)

    def text(block_id: str) -> str | None:
        value = raw(block_id).get("value")
        return value if isinstance(value, str) and value.strip() else None

    def selected(block_id: str) -> str | None:
        option = raw(block_id).get("selected_option") or {}
        value = option.get("value") if isinstance(option, dict) else None
        return value if isinstance(value, str) else None

    def checked(block_id: str, option_value: str) -> bool:
        options = raw(block_id).get("selected_options")
        if not isinstance(options, list):
            return False
        return any(isinstance(o, dict) and o.get("value") == option_value for o in options)

    port_choice = selected(m.PORT)
    return {
        "email": text(m.EMAIL),
        "host": text(m.SERVER),
        "port": text(m.PORT_OTHER) if port_choice == "other" else port_choice,
        "port_choice": port_choice,
        "security": selected(m.SECURITY),
        "requires_auth": checked(m.AUTH, m.AUTH_OPTION),
        "user": text(m.USER),
        "client": selected(m.CLIENT) or "classic",
        "error_text": text(m.ERROR_TEXT),
        "credential_test": checked(m.CREDTEST, m.CREDTEST_OPTION),
        "fails_here": checked(m.FAILS_HERE, m.FAILS_HERE_OPTION),
    }


def build_request(fields: dict[str, Any], *, password: str | None = None) -> CheckRequest:
    """Validate the fields one by one (errors on the right block), then as a whole."""
    errors: dict[str, str] = {}
    email = _field(errors, m.EMAIL, fields.get("email"), normalize_email)
    host = _field(errors, m.SERVER, fields.get("host"), normalize_hostname)
    port_block = m.PORT_OTHER if fields.get("port_choice") == "other" else m.PORT
    port = _field(errors, port_block, fields.get("port"), parse_port)
    if fields.get("port_choice") == "other" and fields.get("port") in (None, ""):
        errors[m.PORT_OTHER] = "Enter the port number Outlook shows, or choose one above"
    user = _field(
        errors, m.USER, fields.get("user"), lambda v: reject_control_chars(v, "the user name")
    )
    security = _choice(errors, m.SECURITY, fields.get("security"), Security)
    client = _choice(errors, m.CLIENT, fields.get("client") or "classic", OutlookClient)
    error_text = fields.get("error_text")
    if error_text is not None and not isinstance(error_text, str):
        errors[m.ERROR_TEXT] = "The error text must be text"
    if not email and not host and m.EMAIL not in errors and m.SERVER not in errors:
        errors[m.SERVER] = "Enter the outgoing server, or your email address so I can find it"
    if password is not None and ("\r" in password or "\n" in password):
        errors[m.PASSWORD] = "The password contains a line break"
    if errors:
        raise FieldErrors(errors)
    try:
        return CheckRequest(
            target=host or email,
            port=port,
            security=security,
            email=email,
            user=user,
            password=SecretStr(password) if password else None,
            requires_auth=bool(fields.get("requires_auth", True)),
            client=client,
            error_text=error_text,
            user_reports_failure=bool(fields.get("fails_here")),
        )
    except ValidationError as exc:
        raise FieldErrors({m.SERVER: plain_validation_message(exc)}) from None


def check_policy(request: CheckRequest, config: EngineConfig, *, port_block: str = m.PORT) -> None:
    """Refuse at once what the target policy forbids without a lookup (ports, IP literals)."""
    from diagnostics._policy import TargetPolicy, literal_address

    policy = TargetPolicy.from_config(config)
    try:
        if request.port is not None:
            policy.check_port(request.port)
    except InputError as exc:
        raise FieldErrors({port_block: str(exc)}) from None
    if request.host and literal_address(request.host) is not None:
        try:
            policy.check_address(request.host)
        except InputError as exc:
            raise FieldErrors({m.SERVER: str(exc)}) from None


def request_fields(request: CheckRequest) -> dict[str, Any]:
    """The settings of a request as stored and re-run (never the password)."""
    return {
        "target": request.target,
        "email": request.email,
        "host": request.host,
        "port": request.port,
        "security": request.security.value if request.security else None,
        "user": request.user,
        "requires_auth": request.requires_auth,
        "client": request.client.value,
        "error_text": request.error_text,
        "fails_here": request.user_reports_failure,
    }


def request_from_fields(fields: dict[str, Any]) -> CheckRequest:
    """Rebuild a request from `request_fields` output (for Re-run; no password)."""
    return CheckRequest(
        target=fields["target"],
        port=fields.get("port"),
        security=fields.get("security"),
        email=fields.get("email"),
        user=fields.get("user"),
        requires_auth=fields.get("requires_auth", True),
        client=OutlookClient(fields.get("client") or "classic"),
        error_text=fields.get("error_text"),
        user_reports_failure=bool(fields.get("fails_here")),
    )


def settings_key(request: CheckRequest) -> str:
    """What identifies 'the same settings' for comparing runs."""
    parts = (
        request.host or "",
        request.target_email or request.email or "",
        str(request.port or ""),
        request.security.value if request.security else "",
        request.user or "",
    )
    return "|".join(parts).lower()


def _field(errors: dict[str, str], block: str, value: Any, check: Callable[[str], Any]) -> Any:
    if value in (None, ""):
        return None
    try:
        return check(str(value))
    except ValueError as exc:
        errors[block] = _sentence(str(exc))
        return None


def _choice(errors: dict[str, str], block: str, value: Any, enum_type: Callable[[Any], Any]) -> Any:
    if value in (None, ""):
        return None
    try:
        return enum_type(value)
    except ValueError:
        errors[block] = "Choose one of the options"
        return None


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] if message else "Invalid value"
