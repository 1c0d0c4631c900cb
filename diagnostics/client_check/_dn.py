"""Distinguished names and dates in every spelling the user's tools print.

The same issuer reads "CN=R11, O=Let's Encrypt, C=US" on Windows, "C = US, O = Let's
Encrypt, CN = R11" in OpenSSL 1.1/3, "/C=US/O=Let's Encrypt/CN=R11" in LibreSSL and
"CN=R11,O=Let's Encrypt,C=US" in RFC 4514; `dn_key` makes them compare equal.
"""

from __future__ import annotations

import datetime as dt
import re

# Attribute names as the tools spell them -> one canonical spelling.
_ATTR_ALIASES = {
    "COMMONNAME": "CN",
    "ORGANIZATIONNAME": "O",
    "ORGANIZATIONALUNITNAME": "OU",
    "COUNTRYNAME": "C",
    "LOCALITYNAME": "L",
    "S": "ST",
    "STATEORPROVINCENAME": "ST",
    "E": "EMAILADDRESS",
    "STREETADDRESS": "STREET",
    "SN": "SURNAME",
    "SERIALNUMBER": "SERIALNUMBER",
    "OID.2.5.4.5": "SERIALNUMBER",
    "2.5.4.5": "SERIALNUMBER",
    "OID.2.5.4.97": "ORGANIZATIONIDENTIFIER",
    "2.5.4.97": "ORGANIZATIONIDENTIFIER",
    "OID.1.2.840.113549.1.9.1": "EMAILADDRESS",
    "1.2.840.113549.1.9.1": "EMAILADDRESS",
    "DOMAINCOMPONENT": "DC",
}
_KEY = r"[A-Za-z][A-Za-z0-9.-]*|\d+(?:\.\d+)+"
# LibreSSL's oneline form does not escape "/" inside values ("Avast Web/Mail Shield Root"):
# split only where a "/" is followed by an attribute name and "=".
_SLASH_SPLIT = re.compile(rf"/(?=(?:{_KEY})\s*=)")


def _split_commas(text: str) -> list[str]:
    """Split on commas (or '+', multi-valued RDNs) outside quotes and backslash escapes."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i : i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in ",+;" and not quoted:
            parts.append("".join(buf))
            buf = []
            i += 1
            continue
        buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _unescape(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1].replace('""', '"')
    value = re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)
    return re.sub(r"\\(.)", r"\1", value).strip()


def parse_dn(text: str) -> list[tuple[str, str]]:
    """(attribute, value) pairs of a DN in any of the four spellings; [] when none."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("/"):
        raw_parts = _SLASH_SPLIT.split(text[1:])
    else:
        raw_parts = _split_commas(text)
        # A comma inside an unescaped value ("O = Foo, Inc." in OpenSSL's default output):
        # glue parts without "=" to the one before.
        merged: list[str] = []
        for part in raw_parts:
            if merged and not re.match(rf"\s*(?:{_KEY})\s*=", part):
                merged[-1] += "," + part
            else:
                merged.append(part)
        raw_parts = merged
    pairs: list[tuple[str, str]] = []
    for part in raw_parts:
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key = key.strip().upper()
        key = _ATTR_ALIASES.get(key, key)
        pairs.append((key, _unescape(value)))
    return pairs


def dn_key(text: str | None) -> frozenset[tuple[str, str]]:
    """An order- and spelling-independent form of a DN, for equality."""
    if not text:
        return frozenset()
    return frozenset((k, " ".join(v.casefold().split())) for k, v in parse_dn(text))


def dn_display(text: str | None) -> str:
    """A one-line human form: "CN=R11, O=Let's Encrypt, C=US" (most specific first)."""
    if not text:
        return ""
    pairs = parse_dn(text)
    if not pairs:
        return text.strip()
    # OpenSSL and LibreSSL print the country first; Windows and RFC 4514 the CN first.
    if pairs[0][0] != "CN" and pairs[-1][0] == "CN":
        pairs.reverse()
    return ", ".join(f"{k}={v}" for k, v in pairs)


def common_name(text: str | None) -> str | None:
    for key, value in parse_dn(text or ""):
        if key == "CN":
            return value
    return None


# --------------------------------------------------------------------------- dates

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_OPENSSL_DATE = re.compile(
    r"^(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:\.\d+)?\s+(?P<year>\d{4})(?:\s+GMT)?$"
)
_NUMERIC_DATE = re.compile(
    r"^(?P<a>\d{1,4})(?P<sep>[./-])\s?(?P<b>\d{1,2})(?P=sep)\s?(?P<c>\d{1,4})\.?"
    r"(?:[ T,]+(?P<h>\d{1,2})[:.](?P<m>\d{2})(?:[:.](?P<s>\d{2}))?"
    r"\s*(?P<ampm>[AaPp]\.?\s?[Mm]\.?)?)?"
)


def parse_date(text: str) -> dt.datetime | None:
    """A certificate date as OpenSSL, ISO 8601 or a localized Windows prints it; else None.

    Windows prints NotAfter in the user's culture: 31.12.2026 23:59:59 (de, ru, ...),
    31/12/2026 23:59:59 (fr, es, en-GB), 12/31/2026 11:59:59 PM (en-US), 2026/12/31 (ja).
    A day-or-month ambiguity is settled by AM/PM (US order), else day first.
    Dates without a zone are taken as UTC (Windows prints local time; hours do not matter
    for telling a certificate apart).
    """
    text = " ".join(text.strip().split())
    if not text:
        return None
    iso = text.replace("Z", "+00:00") if text.endswith("Z") else text
    try:
        value = dt.datetime.fromisoformat(iso)
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except ValueError:
        pass
    if match := _OPENSSL_DATE.match(text):
        month = _MONTHS.get(match["mon"].lower())
        if month:
            return _build(int(match["year"]), month, int(match["day"]), match)
        return None
    if match := _NUMERIC_DATE.match(text):
        a, b, c = int(match["a"]), int(match["b"]), int(match["c"])
        hour = int(match["h"] or 0)
        ampm = (match["ampm"] or "").replace(".", "").replace(" ", "").lower()
        if ampm == "pm" and hour < 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        if len(match["a"]) == 4:  # yyyy-MM-dd, yyyy/MM/dd, yyyy.MM.dd
            year, month, day = a, b, c
        elif ampm or (match["sep"] == "/" and b > 12 >= a):
            year, month, day = c, a, b
        else:
            year, month, day = c, b, a
        if year < 100:
            year += 2000
        return _build(year, month, day, match, hour=hour)
    return None


def _build(
    year: int, month: int, day: int, match: re.Match[str], *, hour: int | None = None
) -> dt.datetime | None:
    try:
        return dt.datetime(
            year,
            month,
            day,
            int(match["h"] or 0) if hour is None else hour,
            int(match["m"] or 0),
            int(match["s"] or 0),
            tzinfo=dt.UTC,
        )
    except ValueError:
        return None
