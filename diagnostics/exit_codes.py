"""The exit status of every `smtpcheck` command (contract: "Exit status").

0 no finding of severity error; 1 at least one error finding; 2 bad input or configuration
(one line on stderr); 3 internal failure.
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_INPUT: Final = 2
EXIT_CONFIG: Final = EXIT_INPUT  # `serve` with a bad configuration: bad input too
EXIT_INTERNAL: Final = 3
