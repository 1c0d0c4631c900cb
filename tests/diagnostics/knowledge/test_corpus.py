"""The corpus of real error texts through `explain`: causes, findings, scope and fix words.

corpus.yaml (beside this file) holds the texts with their sources and expectations; the
samples of test_errortext.py are further texts. Each bullet of issue 14's "Wrong or empty
answers found" has texts here (see the comments in corpus.yaml).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from diagnostics.knowledge import load_knowledge
from diagnostics.knowledge._explain import Explanation, explain
from tests.paths import known_source_ids

CORPUS_PATH = Path(__file__).with_name("corpus.yaml")
CORPUS: list[dict[str, Any]] = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))["texts"]
TODAY = dt.date(2026, 12, 2)


def everything(e: Explanation) -> str:
    parts = [c.cause for c in e.causes] + list(e.notes)
    for finding in e.findings:
        parts += [finding.title, finding.detail]
        if finding.fix is not None:
            parts += [finding.fix.summary, *finding.fix.steps]
    return "\n".join(parts).lower()


def test_the_corpus_has_at_least_150_distinct_texts_with_sources() -> None:
    texts = [entry["text"] for entry in CORPUS]
    assert len(set(texts)) == len(texts) >= 150
    assert all(entry.get("src") and entry.get("group") for entry in CORPUS)
    groups = Counter(entry["group"] for entry in CORPUS)
    for group in ("microsoft365", "outlookcom", "gmail", "yahoo", "icloud", "zoho",
                  "exim-cpanel", "postfix", "outlook-windows", "outlook-mac", "openssl",
                  "schannel", "antivirus", "not-smtp"):  # fmt: skip
        assert groups[group] >= 1, group


@pytest.mark.parametrize(
    "entry", CORPUS, ids=[f"{i:03d}-{e['group']}" for i, e in enumerate(CORPUS)]
)
def test_corpus_text(entry: dict[str, Any]) -> None:
    kb = load_knowledge()
    result = explain(kb, entry["text"], client="classic", today=TODAY)
    assert result.recognised, entry["text"]
    candidates = {f for c in result.causes for f in c.finding_ids}
    shown = {f.id for f in result.findings}
    for finding_id in entry.get("find", []):
        assert finding_id in candidates | shown, (finding_id, candidates, shown)
    for finding_id in entry.get("not", []):
        assert finding_id not in candidates | shown, (finding_id, candidates, shown)
    about = {c.about for c in result.causes}
    for scope in entry.get("about", []):
        assert scope in about, (scope, about)
    if entry.get("outgoing") is False:
        assert result.not_outgoing_settings, [(c.code, c.about) for c in result.causes]
        assert "not an outgoing-settings problem" in everything(result)
    words = everything(result)
    for word in entry.get("words", []):
        assert str(word).lower() in words, (word, words[:600])


@pytest.mark.parametrize("client", ["classic", "new", "mac", "ios", "android"])
def test_every_corpus_text_explains_for_every_client(client: str) -> None:
    kb = load_knowledge()
    for entry in CORPUS:
        result = explain(kb, entry["text"], client=client, today=TODAY)
        for finding in result.findings:
            assert finding.fix is not None, (entry["text"], finding.id)
            assert finding.fix.summary
            assert "{" not in finding.fix.summary + "".join(finding.fix.steps)


def test_every_cited_source_exists() -> None:
    known = known_source_ids()
    if known is None:
        pytest.skip("facts file not checked out")
    cited = {entry["src"] for entry in CORPUS if entry["src"] != "outlook-ui"}
    assert cited <= known, cited - known
