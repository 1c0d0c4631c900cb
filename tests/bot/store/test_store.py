"""The store, against SQLite (a temporary file) and PostgreSQL (the peers' private server).

PostgreSQL cases carry `@pytest.mark.postgres`: deselected by default, and failing (not
skipping) when selected without SMTPCHECK_TEST_POSTGRES_URL (set by scripts/peers.sh).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.store import (
    AlreadyClaimed,
    NotFound,
    Store,
    StoreError,
    database_url,
    run_maintenance_once,
    settings_key,
    start_maintenance,
)
from bot.store._migrate import head_revision
from bot.store._schema import metadata
from tests.bot.support import empty_database, postgres_url
from tests.paths import REPO

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/store.db"
    url = postgres_url()
    await empty_database(url)
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = await Store.open(store_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def two_stores(store_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two Store instances on one database: two replicas."""
    a, b = await asyncio.gather(Store.open(store_url), Store.open(store_url))
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def request_for(host: str | None = "smtp.contoso.com", **extra: Any) -> dict[str, Any]:
    fields = {
        "target": host or extra.get("email"),
        "host": host,
        "port": 587,
        "security": "starttls",
        "email": None,
        "user": None,
        "requires_auth": True,
        "client": "classic",
        "error_text": None,
    }
    fields.update(extra)
    return fields


def report_for(
    host: str | None = "smtp.contoso.com", *findings: tuple[str, str], verdict: str = "fail"
) -> dict[str, Any]:
    return {
        "schema": "smtpcheck.report/1",
        "input": {"target": host, "host": host, "port": 587, "security": "starttls"},
        "verdict": verdict,
        "provider": None,
        "recommended": None,
        "findings": [
            {"id": fid, "severity": sev, "title": fid, "detail": "", "evidence": {}, "fix": None}
            for fid, sev in findings
        ],
        "probes": [{"port": 587, "security": "starttls", "outcome": "ok", "elapsed_ms": 12.5}],
        "transcript": [],
        "timings_ms": {"total": 250.0},
    }


async def save(
    store: Store,
    diagnosis_id: str,
    *,
    user: str = "U1",
    team: str = "T1",
    host: str | None = "smtp.contoso.com",
    findings: tuple[tuple[str, str], ...] = (("tls.cert.expired", "error"),),
    thread_ts: str | None = "1700000000.000100",
    report: dict[str, Any] | None = None,
    **request_extra: Any,
) -> None:
    """A diagnosis saved as the runner saves one; `report` replaces the one made for `host`."""
    await store.save_diagnosis(
        team_id=team,
        user_id=user,
        channel_id="C1",
        thread_ts=thread_ts,
        request=request_for(host, **request_extra),
        report=report if report is not None else report_for(host, *findings),
        diagnosis_id=diagnosis_id,
    )


async def audit_diagnosis(store: Store, host: str, address: str, detail: dict[str, Any]) -> None:
    """U1 in team T1 had `host` port 587 (at `address`) diagnosed."""
    await store.audit(
        team_id="T1",
        user_id="U1",
        action="diagnose",
        host=host,
        port=587,
        address=address,
        detail=detail,
    )


async def escalate(
    store: Store, diagnosis_id: str = "d", *, thread_ts: str | None = None, summary: str = "s"
) -> Any:
    """U1's escalation in team T1, from channel C1."""
    return await store.create_escalation(
        diagnosis_id=diagnosis_id,
        team_id="T1",
        requester_id="U1",
        channel_id="C1",
        thread_ts=thread_ts,
        summary=summary,
    )


async def all_rows_text(store: Store) -> str:
    """Every row of every table, as text (to look for canaries)."""
    chunks = []
    async with store.engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        for name in names:
            for row in await conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                chunks.append(json.dumps([str(v) for v in row]))
    return "\n".join(chunks)


# --------------------------------------------------------------------------- schema


async def test_open_creates_schema_at_head_and_reopen_without_create(store_url: str) -> None:
    store = await Store.open(store_url)
    async with store.engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    await store.close()
    assert {
        "diagnoses",
        "diagnosis_findings",
        "escalations",
        "audit_log",
        "rate_limit_hits",
        "outbox",
        "slack_installations",
        "slack_bots",
        "slack_oauth_states",
        "alembic_version",
    } <= names
    assert version == head_revision()
    # Opening again (a restart) is a no-op; create=False only checks.
    again = await Store.open(store_url, create=False)
    await again.ping()
    await again.close()


async def test_open_without_create_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="schema"):
        await Store.open(f"sqlite+aiosqlite:///{tmp_path}/empty.db", create=False)


def _drift(sync_conn: Any, target: sa.MetaData, *, slack: bool) -> list[Any]:
    """Alembic's autogenerate diff, limited to our tables or to Slack's."""

    def include(name: str | None, type_: str, parents: dict[str, str | None]) -> bool:
        if type_ == "schema":
            return True
        table = name if type_ == "table" else parents.get("table_name")
        return (table or "").startswith("slack_") == slack

    context = MigrationContext.configure(
        sync_conn, opts={"compare_type": True, "include_name": include}
    )
    return [d for d in compare_metadata(context, target) if d[0] != "remove_table"]


async def test_migrations_match_the_table_definitions(store: Store) -> None:
    """No drift between _schema.py (what the code uses) and the migrations (what exists)."""
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_drift, metadata, slack=False) == []


async def test_migrations_match_slack_sdks_oauth_tables(store: Store) -> None:
    """The installation and state tables are what slack_sdk's SQLAlchemy stores expect."""
    from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

    installations = AsyncSQLAlchemyInstallationStore(client_id="c", engine=store.engine)
    states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=60, engine=store.engine)
    async with store.engine.connect() as conn:
        for target in (installations.metadata, states.metadata):
            drift = await conn.run_sync(_drift, target, slack=True)
            # slack_sdk declares Python-side defaults only; ours add server defaults.
            assert [d for d in drift if not _only_index_or_default(d)] == []


def _only_index_or_default(diff: Any) -> bool:
    if isinstance(diff, list):
        return all(d[0] == "modify_default" for d in diff)
    return diff[0] in ("add_index", "remove_index")


async def test_concurrent_first_start_of_two_replicas_migrates_once(store_url: str) -> None:
    a, b = await asyncio.gather(Store.open(store_url), Store.open(store_url))
    async with a.engine.connect() as conn:
        versions = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    await a.close()
    await b.close()
    assert [v[0] for v in versions] == [head_revision()]


@pytest.mark.slow
def test_migrate_command_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli/db.sqlite"
    check = [sys.executable, "-m", "bot.cli", "store", "check", "--url", url]
    before = subprocess.run(check, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert before.returncode == 1 and "is at schema none" in before.stderr
    upgrade = [sys.executable, "-m", "bot.store", "upgrade", "--url", url]  # the old spelling
    done = subprocess.run(upgrade, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    after = subprocess.run(check, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert after.returncode == 0 and "schema is current" in after.stdout


async def test_default_is_a_sqlite_file_created_on_first_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTPCHECK_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    store = await Store.open()
    await store.close()
    assert (tmp_path / "smtpcheck.db").is_file()
    assert store.dialect == "sqlite"
    monkeypatch.setenv("SMTPCHECK_DATABASE_URL", f"sqlite:///{tmp_path}/new/dir/bot.db")
    store = await Store.open()
    await store.close()
    assert (tmp_path / "new/dir/bot.db").is_file()


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://bot:pw@db:5432/smtpcheck", "postgresql+asyncpg"),
        ("postgres://bot@db/smtpcheck", "postgresql+asyncpg"),
        ("postgresql+psycopg2://bot@db/smtpcheck", "postgresql+asyncpg"),
        ("sqlite:///./x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///./x.db", "sqlite+aiosqlite"),
    ],
)
def test_urls_are_rewritten_to_async_drivers(given: str, driver: str) -> None:
    assert database_url(given).drivername == driver


def test_libpq_sslmode_becomes_asyncpg_ssl() -> None:
    url = database_url("postgresql://bot@db/smtpcheck?sslmode=require")
    assert dict(url.query) == {"ssl": "require"}


def test_unsupported_or_garbage_urls_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        database_url("mysql://root:CANARY-pw-4242@db/x")
    with pytest.raises(ValueError) as info:
        database_url("not a url CANARY-pw-4242")
    assert "CANARY" not in str(info.value)


@pytest.mark.slow
async def test_unreachable_postgres_error_never_shows_the_password() -> None:
    # Port 9 on loopback: nothing listens, so the connection is refused at once.
    with pytest.raises(StoreError) as info:
        await Store.open("postgresql://bot:CANARY-pw-4242@127.0.0.1:9/smtpcheck")
    assert "CANARY" not in str(info.value)
    assert "127.0.0.1:9" in str(info.value)


# --------------------------------------------------------------------------- diagnoses


async def test_saved_diagnosis_comes_back_with_its_indexed_columns(store: Store) -> None:
    await save(store, "d1", email="Alice@Contoso.com", port=465, security="ssl")
    row = await store.get_diagnosis("d1")
    assert row is not None
    assert (row.team_id, row.user_id, row.channel_id) == ("T1", "U1", "C1")
    assert row.thread_ts == "1700000000.000100"
    assert row.host == "smtp.contoso.com"
    assert row.sender_domain == "contoso.com"
    assert (row.port, row.security, row.verdict) == (465, "ssl", "fail")
    assert row.finding_ids == ["tls.cert.expired"]
    assert row.report["findings"][0]["id"] == "tls.cert.expired"
    assert row.created_at.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - row.created_at).total_seconds()) < 60
    assert await store.get_diagnosis("nope") is None


async def test_email_target_is_indexed_by_domain_and_probed_host(store: Store) -> None:
    report = report_for(None, ("provider.detected", "info"), verdict="pass")
    report["input"]["target"] = "bob@fabrikam.example"
    report["probes"][0]["host"] = "smtp.office365.com"
    await save(
        store,
        "e1",
        host=None,
        thread_ts=None,
        report=report,
        target="bob@fabrikam.example",
        email="bob@fabrikam.example",
    )
    row = await store.get_diagnosis("e1")
    assert row is not None
    assert (row.host, row.sender_domain) == ("smtp.office365.com", "fabrikam.example")


async def test_secrets_never_reach_the_database(store: Store) -> None:
    canary = "CANARY-7f3a9"
    report = report_for("smtp.contoso.com", ("tls.cert.expired", "error"))
    report["findings"][0]["evidence"] = {"smtp_password": canary, "api_key": canary}
    await save(
        store,
        "canary",
        thread_ts=None,
        report=report,
        password=canary,
        Password=canary,
        nested={"client_secret": canary, "bot_token": canary, "ok": "kept"},
        note=f"token xoxb-{canary}-1 and AUTH PLAIN {canary}AAAA== and password={canary}",
    )
    detail = {"password": canary, "why": f"Bearer {canary}abcdefgh"}
    await audit_diagnosis(store, "smtp.contoso.com", "192.0.2.1", detail)
    await store.enqueue_outbox(
        team_id="T1", method="chat.postMessage", payload={"token": canary, "text": "hi"}
    )
    escalation = await escalate(store, "canary", summary=f"user pasted xoxp-{canary}")
    await store.resolve_escalation(escalation.id, agent_id="U2", note=f"secret={canary}")
    text = await all_rows_text(store)
    assert canary not in text
    row = await store.get_diagnosis("canary")
    assert row is not None and row.request["nested"] == {"ok": "kept"}
    assert "[redacted]" in row.request["note"]


async def test_saving_the_same_id_twice_keeps_the_first(store: Store) -> None:
    await save(store, "dup", user="U1")
    await save(store, "dup", user="U2")
    row = await store.get_diagnosis("dup")
    assert row is not None and row.user_id == "U1"


async def test_previous_diagnosis_is_the_same_users_same_settings_before(store: Store) -> None:
    await save(store, "a1")
    await save(store, "b1", port=465, security="ssl")  # other settings
    await save(store, "a2")
    await save(store, "x1", user="U2")  # another user, same settings
    await save(store, "a3")
    key = settings_key(request_for())
    prev = await store.previous_diagnosis(
        team_id="T1", user_id="U1", settings_key=key, before_id="a3"
    )
    assert prev is not None and prev.diagnosis_id == "a2"
    prev = await store.previous_diagnosis(
        team_id="T1", user_id="U1", settings_key=key, before_id="a2"
    )
    assert prev is not None and prev.diagnosis_id == "a1"
    assert (
        await store.previous_diagnosis(team_id="T1", user_id="U1", settings_key=key, before_id="a1")
        is None
    )
    # A diagnosis not saved yet: the latest one of those settings.
    prev = await store.previous_diagnosis(
        team_id="T1", user_id="U1", settings_key=key, before_id="not-saved"
    )
    assert prev is not None and prev.diagnosis_id == "a3"


def test_settings_key_matches_the_forms_key() -> None:
    from bot.forms import request_fields
    from bot.forms import settings_key as forms_key
    from diagnostics import CheckRequest

    for request in (
        CheckRequest(target="SMTP.Contoso.com:465", security="ssl", user="Alice"),
        CheckRequest(target="bob@fabrikam.example"),
        CheckRequest(target="mail.example.net", email="c@example.net", port=25),
    ):
        assert settings_key(request_fields(request)) == forms_key(request)


async def test_recent_for_user_newest_first_with_limit(store: Store) -> None:
    for i in range(5):
        await save(store, f"r{i}")
    await save(store, "other", user="U2")
    await save(store, "otherteam", team="T2")
    rows = await store.recent_for_user(team_id="T1", user_id="U1", limit=3)
    assert [r.diagnosis_id for r in rows] == ["r4", "r3", "r2"]


async def test_history_by_host_domain_and_subdomain(store: Store) -> None:
    await save(store, "h1", host="smtp.contoso.com")
    await save(store, "h2", host="mail.fabrikam.example", email="x@contoso.com")
    await save(store, "h3", host="smtp.other.example")
    await save(store, "h4", host="smtp.contoso.com", team="T2")
    await save(store, "h5", host="smtp_contoso.com")

    def ids(rows: list[Any]) -> list[str]:
        return [r.diagnosis_id for r in rows]

    assert ids(await store.history(team_id="T1", host_or_domain="smtp.contoso.com")) == ["h1"]
    # The domain: hosts under it and senders at it.
    assert ids(await store.history(team_id="T1", host_or_domain="Contoso.com.")) == ["h2", "h1"]
    assert ids(await store.history(team_id="T1", host_or_domain="someone@contoso.com")) == [
        "h2",
        "h1",
    ]
    assert ids(await store.history(team_id="T1", host_or_domain="  ")) == []
    # LIKE wildcards in the query are literal.
    assert ids(await store.history(team_id="T1", host_or_domain="_contoso.com")) == []
    assert ids(await store.history(team_id="T1", host_or_domain="contoso.com", limit=1)) == ["h2"]


async def test_same_failure_counts_distinct_other_users_since(store: Store) -> None:
    expired = (("tls.cert.expired", "error"),)
    await save(store, "f1", user="U1", findings=expired)
    await save(store, "f2", user="U2", findings=expired)
    await save(store, "f3", user="U2", findings=expired)  # same user twice counts once
    await save(store, "f4", user="U3", findings=(("tcp.refused", "error"),))
    await save(store, "f5", user="U4", findings=expired, host="smtp.other.example")
    await save(store, "f6", user="U5", findings=expired, team="T2")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)

    async def expired_in_t1(host: str, since: dt.datetime, exclude_user: str | None) -> int:
        return await store.same_failure_count(
            team_id="T1",
            host=host,
            finding_id="tls.cert.expired",
            since=since,
            exclude_user=exclude_user,
        )

    assert await expired_in_t1("SMTP.contoso.com", since, exclude_user="U1") == 1
    assert await expired_in_t1("smtp.contoso.com", since, exclude_user=None) == 2
    assert await expired_in_t1("smtp.contoso.com", future, exclude_user=None) == 0


# --------------------------------------------------------------------------- escalations


async def test_escalation_lifecycle(store: Store) -> None:
    await save(store, "d1")
    esc = await escalate(store, "d1", thread_ts="1.2", summary="Port 465 with STARTTLS")
    assert esc.state == "open" and esc.claimed_by is None
    await store.set_escalation_message(esc.id, channel_id="CESC", ts="9.9")
    claimed = await store.claim_escalation(esc.id, agent_id="UAGENT")
    assert (claimed.state, claimed.claimed_by) == ("claimed", "UAGENT")
    assert (claimed.message_channel_id, claimed.message_ts) == ("CESC", "9.9")
    # A retried click by the same agent is harmless; another agent is told who has it.
    assert (await store.claim_escalation(esc.id, agent_id="UAGENT")).claimed_by == "UAGENT"
    with pytest.raises(AlreadyClaimed) as info:
        await store.claim_escalation(esc.id, agent_id="UOTHER")
    assert info.value.claimed_by == "UAGENT" and "<@UAGENT>" in str(info.value)
    resolved = await store.resolve_escalation(esc.id, agent_id="UAGENT", note="renewed cert")
    assert (resolved.state, resolved.resolved_by, resolved.note) == (
        "resolved",
        "UAGENT",
        "renewed cert",
    )
    assert resolved.resolved_at is not None and resolved.resolved_at >= resolved.claimed_at
    again = await store.resolve_escalation(esc.id, agent_id="UOTHER", note="me too")
    assert (again.resolved_by, again.note) == ("UAGENT", "renewed cert")
    with pytest.raises(AlreadyClaimed):
        await store.claim_escalation(esc.id, agent_id="UOTHER")


async def test_resolving_an_open_escalation_records_the_resolver_as_claimer(store: Store) -> None:
    esc = await escalate(store)
    row = await store.resolve_escalation(esc.id, agent_id="UA", note=None)
    assert (row.state, row.claimed_by, row.resolved_by, row.note) == ("resolved", "UA", "UA", None)


async def test_missing_escalation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.claim_escalation(999, agent_id="U")
    with pytest.raises(NotFound):
        await store.resolve_escalation(999, agent_id="U", note=None)
    with pytest.raises(NotFound):
        await store.set_escalation_message(999, channel_id="C", ts="1")
    assert await store.get_escalation(999) is None


async def test_two_replicas_claiming_at_once_one_wins(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    esc = await escalate(a)
    agents = [f"UAG{i}" for i in range(8)]
    results = await asyncio.gather(
        *[(a if i % 2 else b).claim_escalation(esc.id, agent_id=agent) for i, agent in
          enumerate(agents)],
        return_exceptions=True,
    )  # fmt: skip
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyClaimed) for r in results if r not in winners)
    assert all(r.claimed_by == winners[0].claimed_by for r in results if r not in winners)


# --------------------------------------------------------------------------- audit


async def test_audit_entries_record_who_probed_what(store: Store) -> None:
    detail = {"diagnosis_id": "d1", "verdict": "fail"}
    await audit_diagnosis(store, "SMTP.Contoso.com", "203.0.113.5", detail)
    await store.audit(
        team_id="T2", user_id="U9", action="history", host=None, port=None, address=None
    )
    entries = await store.audit_entries(team_id="T1")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["user_id"], entry["action"], entry["host"], entry["port"], entry["address"]) == (
        "U1",
        "diagnose",
        "smtp.contoso.com",
        587,
        "203.0.113.5",
    )
    assert entry["detail"] == {"diagnosis_id": "d1", "verdict": "fail"}
    assert [e["team_id"] for e in await store.audit_entries()] == ["T2", "T1"]


# --------------------------------------------------------------------------- rate limit


async def test_rate_limit_allows_limit_hits_per_window(store: Store) -> None:
    results = [await store.rate_limit_hit("u:1", limit=3, window_s=0.6) for _ in range(5)]
    assert results == [True, True, True, False, False]
    # Another key has its own budget.
    assert await store.rate_limit_hit("u:2", limit=3, window_s=0.6)
    await asyncio.sleep(0.7)
    assert await store.rate_limit_hit("u:1", limit=3, window_s=0.6)
    assert await store.rate_limit_hit("u:1", limit=0, window_s=10) is False


async def test_rate_limit_window_slides(store: Store) -> None:
    assert await store.rate_limit_hit("s", limit=2, window_s=0.8)
    await asyncio.sleep(0.45)
    assert await store.rate_limit_hit("s", limit=2, window_s=0.8)
    assert not await store.rate_limit_hit("s", limit=2, window_s=0.8)
    await asyncio.sleep(0.45)  # the first hit left the window, the second did not
    assert await store.rate_limit_hit("s", limit=2, window_s=0.8)
    assert not await store.rate_limit_hit("s", limit=2, window_s=0.8)


@pytest.mark.slow
async def test_rate_limit_is_exact_across_two_replicas(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    results = await asyncio.gather(
        *[(a if i % 2 else b).rate_limit_hit("shared", limit=7, window_s=30) for i in range(40)]
    )
    assert sum(results) == 7
    async with a.engine.connect() as conn:
        stored = (
            await conn.execute(sa.text("SELECT count(*) FROM rate_limit_hits WHERE key='shared'"))
        ).scalar()
    assert stored == 7  # refused hits are not counted


# --------------------------------------------------------------------------- outbox


async def test_outbox_lease_backoff_and_delivery(store: Store) -> None:
    first = await store.enqueue_outbox(
        team_id="T1", method="chat.postMessage", payload={"channel": "C1", "text": "one"}
    )
    second = await store.enqueue_outbox(
        team_id="T1", method="chat.update", payload={"channel": "C1", "ts": "1.1", "text": "2"}
    )
    due = await store.pending_outbox(limit=10)
    assert [(r.id, r.method) for r in due] == [(first, "chat.postMessage"), (second, "chat.update")]
    assert due[0].payload == {"channel": "C1", "text": "one"}
    # Leased: a second poll (another replica) gets nothing.
    assert await store.pending_outbox() == []
    await store.mark_outbox_sent(first)
    await store.mark_outbox_failed(second, error="ratelimited xoxb-123-secret")
    entry = await store.outbox_entry(second)
    assert entry is not None
    assert (entry.state, entry.attempts) == ("pending", 1)
    assert entry.last_error is not None and "secret" not in entry.last_error
    assert entry.next_attempt_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    assert await store.pending_outbox() == []
    sent = await store.outbox_entry(first)
    assert sent is not None and sent.state == "sent"


async def test_outbox_gives_up_on_permanent_errors(store: Store) -> None:
    oid = await store.enqueue_outbox(team_id="T1", method="chat.postMessage", payload={})
    await store.mark_outbox_failed(oid, error="channel_not_found", permanent=True)
    entry = await store.outbox_entry(oid)
    assert entry is not None and entry.state == "dead"
    with pytest.raises(NotFound):
        await store.mark_outbox_failed(12345, error="x")


async def test_outbox_rows_go_to_one_replica_only(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    ids = {
        await a.enqueue_outbox(team_id="T1", method="chat.postMessage", payload={"n": i})
        for i in range(12)
    }
    got = await asyncio.gather(*[(a if i % 2 else b).pending_outbox(limit=5) for i in range(6)])
    seen = [row.id for rows in got for row in rows]
    assert sorted(seen) == sorted(ids)  # each row handed out exactly once


# --------------------------------------------------------------------------- retention


async def test_purge_deletes_old_rows_and_keeps_open_escalations(store: Store) -> None:
    await save(store, "old")
    await store.audit(team_id="T1", user_id="U1", action="a", host=None, port=None, address=None)
    await store.enqueue_outbox(team_id="T1", method="chat.postMessage", payload={})
    await store.rate_limit_hit("k", limit=5, window_s=3600)
    open_esc = await escalate(store, "old")
    done_esc = await escalate(store, "old")
    await store.resolve_escalation(done_esc.id, agent_id="UA", note=None)
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO slack_oauth_states (state, expire_at) VALUES ('gone', :t)"),
            {"t": dt.datetime(2000, 1, 1)},
        )
    await asyncio.sleep(0.05)
    cutoff = dt.datetime.now(dt.UTC)
    await asyncio.sleep(0.05)
    await save(store, "new")

    deleted = await store.purge(older_than=cutoff)
    # diagnosis + finding + audit + outbox + rate hit + resolved escalation + oauth state
    assert deleted == 7
    assert await store.get_diagnosis("old") is None
    assert await store.get_diagnosis("new") is not None
    assert await store.get_escalation(open_esc.id) is not None
    assert await store.get_escalation(done_esc.id) is None
    assert await store.audit_entries() == []
    assert await store.purge(older_than=cutoff) == 0


async def stop_when_set(task: asyncio.Task[None], event: asyncio.Event) -> None:
    """Let the maintenance task run until `event` (5 s at most), then cancel it and wait for
    it to end: a round still inside the database when the fixture closes the store would
    hang aiosqlite's close."""
    try:
        await asyncio.wait_for(event.wait(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_maintenance_task_purges_and_drives_the_outbox(store: Store) -> None:
    await save(store, "ancient")
    await asyncio.sleep(0.3)
    await store.enqueue_outbox(team_id="T1", method="chat.postMessage", payload={})
    calls: list[Store] = []
    flushed = asyncio.Event()

    async def flush(s: Store) -> None:
        calls.append(s)
        if len(calls) >= 3:
            flushed.set()

    task = start_maintenance(
        store, 0.05, retention=dt.timedelta(seconds=0.2), outbox=flush, purge_every=3600
    )
    await stop_when_set(task, flushed)
    assert calls[0] is store
    assert await store.get_diagnosis("ancient") is None
    from bot.observability.metrics import METRICS

    assert METRICS.outbox_pending._value.get() == 1  # the entry enqueued above


async def test_outbox_backlog_counts_pending_entries(store: Store) -> None:
    first = await store.enqueue_outbox(team_id="T1", method="chat.postMessage", payload={})
    await store.enqueue_outbox(team_id="T1", method="chat.postMessage", payload={})
    assert await store.outbox_backlog() == 2
    await store.mark_outbox_sent(first)
    assert await store.outbox_backlog() == 1


async def test_maintenance_survives_a_failing_round(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rounds = 0
    done = asyncio.Event()

    async def flaky(_: Store) -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("slack is down")
        done.set()

    task = start_maintenance(store, 0.02, outbox=flaky)
    await stop_when_set(task, done)
    assert rounds >= 2
    assert "outbox round failed" in caplog.text


async def test_run_maintenance_once_uses_the_retention(store: Store) -> None:
    await save(store, "x")
    assert await run_maintenance_once(store, retention=dt.timedelta(days=90)) == 0
    await asyncio.sleep(0.05)
    assert await run_maintenance_once(store, retention=dt.timedelta(seconds=0.01)) == 2


def test_retention_days_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.store import retention_days

    monkeypatch.delenv("SMTPCHECK_RETENTION_DAYS", raising=False)
    assert retention_days() == 90
    monkeypatch.setenv("SMTPCHECK_RETENTION_DAYS", "30")
    assert retention_days() == 30
    for bad in ("0", "ninety"):
        monkeypatch.setenv("SMTPCHECK_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="SMTPCHECK_RETENTION_DAYS"):
            retention_days()
