from slack_bolt.async_app import AsyncApp

from bot.listeners.views.check_submission import check_submission, credentials_submission
from bot.listeners.views.client_paste import client_paste_submission
from bot.views.client_check import PASTE_CALLBACK
from bot.views.modal import CHECK_CALLBACK, CREDENTIALS_CALLBACK


def register(app: AsyncApp) -> None:
    app.view_submission(CHECK_CALLBACK)(check_submission)
    app.view_submission(CREDENTIALS_CALLBACK)(credentials_submission)
    app.view_submission(PASTE_CALLBACK)(client_paste_submission)
