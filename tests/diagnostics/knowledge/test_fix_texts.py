"""Every fix text for every Outlook, filled for every provider and reply variant, reads well.

Limits (issue 14, item 5): a summary is at most SUMMARY_MAX characters (it is a heading in
Slack and the terminal); a step at most STEP_MAX (about three lines in Slack: one idea per
step). No placeholder is left, and no parenthetical is said twice within a step or a fix
(the older label "(called TLS in Outlook 2016 and older)" once per fix).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from diagnostics._models import Fix, OutlookClient, Security
from diagnostics.knowledge import FixContext, Knowledge, data_dir, load_knowledge
from diagnostics.knowledge._kb import UNVERIFIED_CLAIM, UNVERIFIED_NOTE

SUMMARY_MAX = 140
STEP_MAX = 400
PARENTHETICAL = re.compile(r"\([^()]{12,}\)")
DATA = data_dir()


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge()


def contexts(kb: Knowledge) -> Iterator[FixContext]:
    yield FixContext()
    evidence = {"reply": "535 5.7.8 Authentication credentials invalid", "product": "Avast",
                "product_kind": "antivirus", "ports": [587, 465]}  # fmt: skip
    for provider in kb.providers:
        rec = provider.recommended()
        yield FixContext(
            host=rec.host if rec else "mail.example.com",
            port=465,
            security=Security.STARTTLS,
            provider=provider,
            recommended=rec,
            email="ann@example.com",
            user="ann@example.com",
            evidence=evidence,
        )


def every_fix(kb: Knowledge) -> Iterator[tuple[str, Fix]]:
    ctxs = list(contexts(kb))
    for finding_id in kb.finding_ids:
        entry = kb.fix_entry(finding_id)
        variants = [None, *(entry.variants if entry else ())]
        for client in OutlookClient:
            for ctx in ctxs:
                for variant in variants:
                    fix = kb.fix_for(
                        finding_id, client, ctx.model_copy(update={"variant": variant})
                    )
                    assert fix is not None, finding_id
                    where = (
                        f"{finding_id} [{client.value}] {ctx.provider.key if ctx.provider else '-'}"
                    )
                    yield f"{where} {variant or ''}", fix


def test_every_fix_text_fills_reads_and_fits(kb: Knowledge) -> None:
    problems: list[str] = []
    count = 0
    for where, fix in every_fix(kb):
        count += 1
        texts = [fix.summary, *fix.steps]
        if any("{" in t or "}" in t for t in texts):
            problems.append(f"{where}: placeholder left: {texts}")
        if len(fix.summary) > SUMMARY_MAX:
            problems.append(f"{where}: summary {len(fix.summary)} > {SUMMARY_MAX}")
        seen: set[str] = set()
        for step in fix.steps:
            if len(step) > STEP_MAX:
                problems.append(f"{where}: step {len(step)} > {STEP_MAX}: {step[:80]}")
            if not step.strip():
                problems.append(f"{where}: empty step")
            found = PARENTHETICAL.findall(step)
            if len(found) != len(set(found)):
                problems.append(f"{where}: parenthetical repeated in a step: {step[:120]}")
            repeated = seen & set(found)
            if repeated:
                problems.append(f"{where}: {sorted(repeated)} said again in a later step")
            seen |= set(found)
        if len(fix.steps) != len(set(fix.steps)):
            problems.append(f"{where}: a step is repeated")
    assert count > 5000
    assert not problems, "\n".join(problems[:40])


def test_older_label_is_named_once_per_fix(kb: Knowledge) -> None:
    ctx = FixContext(host="mail.example.net", port=465, security=Security.STARTTLS)
    fix = kb.fix_for("tls.mode.starttls_on_ssl_port", OutlookClient.CLASSIC, ctx)
    text = " ".join([fix.summary, *fix.steps])
    assert text.count("(called SSL in Outlook 2016 and older)") == 1
    assert text.count("(called TLS in Outlook 2016 and older)") <= 1


def test_unverified_steps_say_so_to_the_user(kb: Knowledge) -> None:
    """Issue 14: steps marked unverified look different to the user from verified ones."""
    for where, fix in every_fix(kb):
        finding_id, client = where.split(" ")[0], OutlookClient(where.split("[")[1].split("]")[0])
        spec = kb.fix_spec(finding_id, client)
        if spec is not None and spec.status == "unverified" and spec is not None:
            notes = {
                UNVERIFIED_NOTE.format(client_name=kb.client(client).name),
                UNVERIFIED_CLAIM,
            }
            # a provider or variant spec may replace it; the client's own spec is checked
            if "-" in where.split("]")[1][:3]:
                assert fix.steps and fix.steps[-1] in notes, where
    new = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.NEW, FixContext(port=587))
    assert "Menu names may differ in your version of new Outlook" in new.steps[-1]
    classic = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, FixContext())
    assert not any("not yet confirmed" in s for s in classic.steps)


@pytest.mark.parametrize(
    ("today", "words"),
    [
        (dt.date(2026, 12, 2), "at the end of December 2026, so this is short-lived"),
        (dt.date(2026, 12, 31), "starts switching password sign-in for SMTP off by default today"),
        (dt.date(2027, 3, 1), "began switching password sign-in for SMTP off by default on 31"),
    ],
)
def test_dated_sentences_follow_today(kb: Knowledge, today: dt.date, words: str) -> None:
    ctx = FixContext(provider=kb.provider("microsoft365"), today=today)
    for finding_id in ("auth.failed.basic_disabled", "provider.policy.m365_basic_auth_retirement"):
        fix = kb.fix_for(finding_id, OutlookClient.CLASSIC, ctx)
        text = " ".join(fix.steps)
        assert words in text, (finding_id, text)
        if today > dt.date(2026, 12, 31):
            assert "short-lived" not in text and "before the cut-off" not in text
            assert "Plan now" not in fix.summary


def test_no_dated_sentence_is_written_into_a_fix() -> None:
    """Dates in fix texts come from policies.yaml phrases, worded for today; never typed."""
    for path in sorted(DATA.glob("fixes*.yaml")):
        raw = path.read_text(encoding="utf-8")
        for phrase in ("short-lived", "before the cut-off", "Plan now", "December 2026"):
            assert phrase not in raw, (path.name, phrase)


def test_user_facing_text_says_which_side_it_checked_from() -> None:
    """ "from here" reads as "from my computer": the checking server is named instead."""
    for path in sorted(DATA.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        text = yaml.safe_dump(data, allow_unicode=True, width=10_000)
        assert "from here" not in text, path.name


def test_sources_file_is_consistent() -> None:
    sources = yaml.safe_load((DATA / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    for key, entry in sources.items():
        assert re.fullmatch(r"S1\d\d", key), key
        assert entry["kind"] in {"primary", "observed", "secondary"}
        assert entry["supports"] and entry["urls"]
    cited = set()
    for path in sorted(DATA.glob("*.yaml")):
        cited |= set(re.findall(r"\bS1\d\d\b", path.read_text(encoding="utf-8")))
    assert cited <= set(sources), cited - set(sources)


def test_docs_show_unverified_clients() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "findings.md").read_text(encoding="utf-8")
    assert "not confirmed by a source: new, ios, android" in doc
