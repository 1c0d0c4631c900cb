"""Sender-domain health: MX, SPF, DMARC, MTA-STS and TLS-RPT, plus the server's reverse DNS.

Outlook's "can't send" is sometimes not the submission server at all: the sender's domain
does not exist, cannot receive replies, or fails SPF/DMARC so receivers refuse the mail.
`check_sender_domain` reads the domain's DNS and returns findings (without fixes; the
engine attaches those). It never connects anywhere but the DNS servers, and does not fetch
the MTA-STS policy over HTTPS (the target policy governs connections; DNS is enough here).

Severities, and why:

* The domain does not exist (``dns.sender.nxdomain``): error; receivers reject such mail.
* No MX: warn when the domain has an address (implicit MX, RFC 5321 section 5.1), error
  when it has neither (nobody can reply; many servers reject mail from such a domain).
  Null MX (RFC 7505): error; the address cannot receive mail and receivers may refuse it.
* SPF missing: warn. Multiple records, invalid syntax, a broken include, too many DNS
  lookups: error, since each makes every SPF check end in a permanent error (RFC 7208).
* DMARC missing or invalid: warn (an invalid record is ignored by receivers, the same as
  none; both cost deliverability with the big mailbox providers but rarely block sending).
* MTA-STS and TLS-RPT concern mail *to* the domain: info, or warn when a record is broken.

Lookups run concurrently and are bounded: SPF follows include/redirect only while the
count is within the limit (at most ~10 TXT fetches), MX hosts are resolved up to
`MAX_MX_HOSTS_CHECKED`, and the DMARC tree walk asks at most 8 names.
"""

from diagnostics._sender.dmarc import parse_dmarc
from diagnostics._sender.domain import check_sender_domain
from diagnostics._sender.mta_sts import parse_mta_sts, parse_tlsrpt
from diagnostics._sender.ptr import check_ptr
from diagnostics._sender.spf import (
    SPF_LOOKUP_LIMIT,
    SpfSyntaxError,
    analyze_spf,
    is_spf,
    parse_spf,
)

__all__ = [
    "SPF_LOOKUP_LIMIT",
    "SpfSyntaxError",
    "analyze_spf",
    "check_ptr",
    "check_sender_domain",
    "is_spf",
    "parse_dmarc",
    "parse_mta_sts",
    "parse_spf",
    "parse_tlsrpt",
]
