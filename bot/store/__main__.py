"""`python -m bot.store upgrade|check|purge`: kept for old scripts; `smtpcheck store ...`."""

import sys

from bot.cli import main

sys.exit(main(["store", *sys.argv[1:]]))
