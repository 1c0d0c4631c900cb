"""Text safety for Slack: hidden characters made visible, mrkdwn escaping, and truncation to
Block Kit's limits. Every text of a message or view passes `escape`, `md` or `plain`, which
all apply `diagnostics.sanitize.visible` (control, bidi and invisible characters). And the
modal every view builder returns, validated against Block Kit's limits."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, MarkdownTextObject, PlainTextObject
from slack_sdk.models.views import View

from diagnostics.sanitize import visible

ELLIPSIS = "…"
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000
HEADER_MAX = 150
BUTTON_TEXT_MAX = 75
VIEW_TITLE_MAX = 24
OPTION_TEXT_MAX = 75
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
FALLBACK_TEXT_MAX = 3000
PRIVATE_METADATA_MAX = 3000


def escape(text: object) -> str:
    """Escape &, < and > so user or server text can never become a mention or a link."""
    text = visible(text, multiline=True)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def clip_escaped(text: object, limit: int) -> str:
    """Escape, then cut without splitting an entity such as &amp;."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(0, limit - 1)]
    amp = cut.rfind("&")
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def code(text: object) -> str:
    """Inline code: escaped, and unable to close itself early."""
    return "`" + escape(text).replace("`", "ˋ") + "`"


def code_block(text: str, limit: int) -> str:
    """A ``` block of escaped text, at most `limit` characters including the fences."""
    body = escape(text).replace("```", "ˋˋˋ")
    inner = limit - 8
    if len(body) > inner:
        body = body[: max(0, inner - 1)]
        amp = body.rfind("&")
        if amp >= 0 and ";" not in body[amp:]:
            body = body[:amp]
        body += ELLIPSIS
    return f"```\n{body}\n```"


def md(text: str) -> MarkdownTextObject:
    """mrkdwn that Slack shows verbatim: no auto-linking, no @here/@channel parsing."""
    return MarkdownTextObject(text=visible(text, multiline=True) or " ", verbatim=True)


def plain(text: object, limit: int) -> PlainTextObject:
    """Plain text (never parsed for links or mentions), cut to `limit`."""
    return PlainTextObject(text=clip(visible(text, multiline=True) or " ", limit), emoji=True)


def one_line(text: object) -> str:
    """Collapse line breaks and runs of blanks (for titles and fallback text)."""
    return " ".join(str(text).split())


def fit_lines(title: str, lines: list[str]) -> str:
    """TITLE and as many LINES as fit in a section, then how many more there were."""
    out, size = [title], len(title)
    for i, line in enumerate(lines):
        if size + len(line) + 1 > SECTION_TEXT_MAX - 40:
            out.append(f"_…{len(lines) - i} more_")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def modal(
    callback_id: str,
    title: str,
    blocks: list[Block],
    *,
    close: str,
    submit: str | None = None,
    private_metadata: str | None = None,
) -> View:
    """A modal view, checked against Block Kit's limits before Slack sees it."""
    view = View(
        type="modal",
        callback_id=callback_id,
        title=plain(title, 24),
        submit=plain(submit, 24) if submit else None,
        close=plain(close, 24),
        blocks=blocks,
        private_metadata=private_metadata,
    )
    view.validate_json()
    return view
