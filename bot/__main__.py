"""`python -m bot`: the same as the `smtpcheck` command."""

import sys

from bot.cli import main

sys.exit(main())
