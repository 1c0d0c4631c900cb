"""The Slack app manifests: valid against (a subset of) Slack's manifest schema, and in step
with the code: the command, shortcut and events registered, and exactly the scopes used."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml

from bot.listeners.commands import COMMAND
from bot.listeners.shortcuts import DIAGNOSE_MESSAGE
from bot.oauth import DEFAULT_REDIRECT_URI_PATH, DEFAULT_SCOPES
from tests.paths import REPO as ROOT

MANIFESTS = {
    "http": ROOT / "deploy/slack/manifest-http.yaml",
    "socket": ROOT / "deploy/slack/manifest-socket.yaml",
}
_URL = {"type": "string", "pattern": r"^https://[^\s]+$", "maxLength": 2000}
_SCOPE = {"type": "string", "pattern": r"^[a-z_.]+(:[a-z_.]+)*$"}

# From Slack's app manifest reference (the fields this app uses, with their limits).
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["display_information"],
    "additionalProperties": False,
    "properties": {
        "_metadata": {"type": "object"},
        "display_information": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 35},
                "description": {"type": "string", "maxLength": 140},
                "long_description": {"type": "string", "minLength": 174, "maxLength": 4000},
                "background_color": {
                    "type": "string",
                    "pattern": r"^#([0-9a-fA-F]{3}){1,2}$",
                },
            },
        },
        "features": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "app_home": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "home_tab_enabled": {"type": "boolean"},
                        "messages_tab_enabled": {"type": "boolean"},
                        "messages_tab_read_only_enabled": {"type": "boolean"},
                    },
                },
                "bot_user": {
                    "type": "object",
                    "required": ["display_name"],
                    "additionalProperties": False,
                    "properties": {
                        "display_name": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 80,
                            "pattern": r"^[a-z0-9][a-z0-9._-]*$",
                        },
                        "always_online": {"type": "boolean"},
                    },
                },
                "slash_commands": {
                    "type": "array",
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "required": ["command", "description"],
                        "additionalProperties": False,
                        "properties": {
                            "command": {
                                "type": "string",
                                "pattern": r"^/[a-z0-9_-]+$",
                                "maxLength": 32,
                            },
                            "description": {"type": "string", "minLength": 1, "maxLength": 2000},
                            "url": _URL,
                            "usage_hint": {"type": "string", "maxLength": 1000},
                            "should_escape": {"type": "boolean"},
                        },
                    },
                },
                "shortcuts": {
                    "type": "array",
                    "maxItems": 10,
                    "items": {
                        "type": "object",
                        "required": ["name", "type", "callback_id", "description"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": 24},
                            "type": {"enum": ["message", "global"]},
                            "callback_id": {"type": "string", "minLength": 1, "maxLength": 255},
                            "description": {"type": "string", "minLength": 1, "maxLength": 150},
                        },
                    },
                },
            },
        },
        "oauth_config": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "redirect_urls": {"type": "array", "items": _URL},
                "scopes": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "bot": {
                            "type": "array",
                            "maxItems": 255,
                            "items": _SCOPE,
                            "uniqueItems": True,
                        },
                        "user": {
                            "type": "array",
                            "maxItems": 255,
                            "items": _SCOPE,
                            "uniqueItems": True,
                        },
                    },
                },
            },
        },
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "allowed_ip_address_ranges": {"type": "array", "items": {"type": "string"}},
                "event_subscriptions": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "request_url": _URL,
                        "bot_events": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"type": "string", "pattern": r"^[a-z_]+$"},
                        },
                        "user_events": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "interactivity": {
                    "type": "object",
                    "required": ["is_enabled"],
                    "additionalProperties": False,
                    "properties": {
                        "is_enabled": {"type": "boolean"},
                        "request_url": _URL,
                        "message_menu_options_url": _URL,
                    },
                },
                "org_deploy_enabled": {"type": "boolean"},
                "socket_mode_enabled": {"type": "boolean"},
                "token_rotation_enabled": {"type": "boolean"},
            },
        },
    },
}

# Web API methods and the bot scope each needs (None: no scope).
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "views_open": None,
    "views_push": None,
    "views_update": None,
    "views_publish": None,
    "auth_test": None,
}


def load(kind: str) -> dict:
    return yaml.safe_load(MANIFESTS[kind].read_text())


@pytest.mark.parametrize("kind", MANIFESTS)
def test_manifest_matches_slack_schema(kind: str) -> None:
    jsonschema.validate(load(kind), MANIFEST_SCHEMA)


def test_schema_catches_mistakes() -> None:
    broken = load("http")
    broken["display_information"]["name"] = "x" * 36
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, MANIFEST_SCHEMA)
    typo = load("http")
    typo["settings"]["interactivty"] = {"is_enabled": True}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, MANIFEST_SCHEMA)


def test_modes_differ_only_where_they_must() -> None:
    http, socket = load("http"), load("socket")
    assert http["settings"]["socket_mode_enabled"] is False
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" in http["settings"]["interactivity"]
    assert "request_url" not in socket["settings"]["interactivity"]
    assert all("url" not in c for c in socket["features"]["slash_commands"])
    assert all(c["url"].endswith("/slack/events") for c in http["features"]["slash_commands"])
    assert http["oauth_config"]["scopes"] == socket["oauth_config"]["scopes"]
    # The install's redirect needs a public URL: HTTP mode only.
    assert "redirect_urls" not in socket["oauth_config"]
    assert set(http["oauth_config"]) == {"scopes", "redirect_urls"}
    assert http["features"]["shortcuts"] == socket["features"]["shortcuts"]


@pytest.mark.parametrize("kind", MANIFESTS)
def test_manifest_declares_what_the_code_registers(kind: str) -> None:
    manifest = load(kind)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == [DIAGNOSE_MESSAGE]
    registered = set(re.findall(r'app\.event\("([a-z_]+)"\)', _bot_source()))
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == registered


def _bot_source() -> str:
    files = [p for p in (ROOT / "bot").rglob("*.py") if "store" not in p.parts]
    return "\n".join(p.read_text() for p in files)


@pytest.mark.parametrize("kind", MANIFESTS)
def test_scopes_are_exactly_those_used(kind: str) -> None:
    source = _bot_source()
    methods = set(
        re.findall(
            r"client\.(chat_\w+|views_\w+|auth_\w+|users_\w+|conversations_\w+|files_\w+)\(", source
        )
    )
    methods |= {
        m.replace(".", "_")
        for m in re.findall(r'"((?:chat|views|users|conversations|files)\.\w+)"', source)
    }
    unknown = methods - METHOD_SCOPES.keys()
    assert not unknown, f"add the scope of {unknown} to METHOD_SCOPES"
    needed = {METHOD_SCOPES[m] for m in methods} - {None}
    needed.add("commands")  # the slash command and the message shortcut
    assert set(load(kind)["oauth_config"]["scopes"]["bot"]) == needed


@pytest.mark.parametrize("kind", MANIFESTS)
def test_oauth_install_asks_for_the_manifest_scopes(kind: str) -> None:
    """A multi-workspace install asks Slack for exactly the scopes the manifest declares."""
    assert sorted(DEFAULT_SCOPES) == sorted(load(kind)["oauth_config"]["scopes"]["bot"])


def test_redirect_url_is_where_the_bot_listens() -> None:
    http = load("http")
    [redirect] = http["oauth_config"]["redirect_urls"]
    events = http["settings"]["event_subscriptions"]["request_url"]
    # The same public server as the request URL, on the path bot.oauth mounts by default.
    assert redirect == events.removesuffix("/slack/events") + DEFAULT_REDIRECT_URI_PATH
