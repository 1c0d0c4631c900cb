from slack_bolt.async_app import AsyncApp

from bot.listeners.shortcuts.diagnose_message import diagnose_message_shortcut

DIAGNOSE_MESSAGE = "diagnose_mail_error"


def register(app: AsyncApp) -> None:
    app.message_shortcut(DIAGNOSE_MESSAGE)(diagnose_message_shortcut)
