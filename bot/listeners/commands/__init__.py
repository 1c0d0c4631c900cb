from slack_bolt.async_app import AsyncApp

from bot.listeners.commands.smtpcheck import smtpcheck_command

COMMAND = "/smtpcheck"


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(smtpcheck_command)
