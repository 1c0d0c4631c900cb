import re

from slack_bolt.async_app import AsyncApp

from bot.listeners.actions.client_check_buttons import open_client_paste, show_client_script
from bot.listeners.actions.escalation_buttons import claim_escalation, resolve_escalation
from bot.listeners.actions.report_buttons import (
    details,
    details_page,
    enter_server,
    escalate,
    rerun,
)
from bot.views.details import PAGE_ACTION
from bot.views.escalation import CLAIM_ACTION, RESOLVE_ACTION
from bot.views.report import (
    CLIENT_PASTE_ACTION,
    CLIENT_SCRIPT_MAC_ACTION,
    CLIENT_SCRIPT_WINDOWS_ACTION,
    DETAILS_ACTION,
    ENTER_SERVER_ACTION,
    ESCALATE_ACTION,
    RERUN_ACTION,
)


def register(app: AsyncApp) -> None:
    app.action(RERUN_ACTION)(rerun)
    app.action(DETAILS_ACTION)(details)
    app.action(re.compile(f"^{PAGE_ACTION}_(prev|next)$"))(details_page)
    app.action(ESCALATE_ACTION)(escalate)
    app.action(ENTER_SERVER_ACTION)(enter_server)
    app.action(CLAIM_ACTION)(claim_escalation)
    app.action(RESOLVE_ACTION)(resolve_escalation)
    app.action(CLIENT_SCRIPT_WINDOWS_ACTION)(show_client_script)
    app.action(CLIENT_SCRIPT_MAC_ACTION)(show_client_script)
    app.action(CLIENT_PASTE_ACTION)(open_client_paste)
