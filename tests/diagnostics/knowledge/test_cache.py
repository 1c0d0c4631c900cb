"""The validated knowledge base kept between runs (diagnostics/knowledge/_cache.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from diagnostics.knowledge import _cache
from diagnostics.knowledge._kb import Knowledge
from diagnostics.knowledge._loader import data_dir, validated_parts


class Counting:
    """validated_parts, counting its calls: a cache hit calls it zero times."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, directory: Path) -> dict[str, Any]:
        self.calls += 1
        return validated_parts(directory)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    return copy


def same(built: Any, validated: Any, where: str = "") -> None:
    """Equal, and of the same types all the way down (a str is not a Severity, nor a list a
    tuple, though they compare equal)."""
    assert type(built) is type(validated), (where, type(built), type(validated))
    if isinstance(validated, BaseModel):
        for name in type(validated).model_fields:
            same(getattr(built, name), getattr(validated, name), f"{where}.{name}")
    elif isinstance(validated, list | tuple):
        assert len(built) == len(validated), where
        for index, (a, b) in enumerate(zip(built, validated, strict=True)):
            same(a, b, f"{where}[{index}]")
    elif isinstance(validated, dict):
        assert list(built) == list(validated), where
        for key_a, key_b in zip(built, validated, strict=True):
            same(key_a, key_b, f"{where} key")
            same(built[key_a], validated[key_b], f"{where}[{key_b!r}]")
    else:
        assert built == validated, where


def built(parts: dict[str, Any]) -> dict[str, Any]:
    """The parts, every entry of those built lazily built now (in order, a tuple)."""
    return {
        name: tuple(part[key] for key in part) if isinstance(part, _cache.Indexed) else part
        for name, part in parts.items()
    }


def test_second_load_constructs_the_same_knowledge_without_validating(tmp_path):
    validate = Counting()
    first = _cache.load_parts(data_dir(), validate, where=tmp_path)
    assert validate.calls == 1
    assert _cache.cache_file(tmp_path, _cache.cache_key(data_dir())).is_file()
    second = _cache.load_parts(data_dir(), validate, where=tmp_path)
    assert validate.calls == 1  # from the cache
    same(built(second), first)
    # And what the engine uses works from it: a provider is recognised.
    knowledge = Knowledge(**second)
    assert knowledge.match_host("smtp.office365.com") is not None
    assert knowledge.finding_ids == Knowledge(**first).finding_ids


def test_versions_in_use_keep_their_own_entries_and_old_ones_go(tmp_path, data):
    validate = Counting()
    _cache.load_parts(data_dir(), validate, where=tmp_path)
    _cache.load_parts(data, validate, where=tmp_path)  # same data: the same entry
    assert validate.calls == 1
    findings = data / "findings.yaml"
    versions = 0
    for version in range(_cache.KEPT + 2):
        findings.write_text(findings.read_text() + f"\n# version {version}\n")
        _cache.load_parts(data, validate, where=tmp_path)
        versions += 1
    assert len(list(tmp_path.glob("knowledge-*.json"))) == _cache.KEPT
    _cache.load_parts(data, validate, where=tmp_path)  # the newest is still there
    assert validate.calls == 1 + versions


def test_a_changed_data_file_is_validated_again_never_served_stale(tmp_path, data):
    validate = Counting()
    _cache.load_parts(data, validate, where=tmp_path)
    findings = data / "findings.yaml"
    old_title = validated_parts(data)["findings"][0].title
    findings.write_text(findings.read_text().replace(old_title, "A title changed on disk", 1))
    parts = _cache.load_parts(data, validate, where=tmp_path)
    assert validate.calls == 2
    assert parts["findings"][0].title == "A title changed on disk"
    # The entry was replaced: the next run reads the new data from the cache.
    again = _cache.load_parts(data, validate, where=tmp_path)
    assert validate.calls == 2 and again["findings"][0].title == "A title changed on disk"


def test_an_invalid_data_file_is_refused_even_with_a_cache(tmp_path, data):
    from diagnostics._errors import KnowledgeError

    _cache.load_parts(data, Counting(), where=tmp_path)
    (data / "clients.yaml").write_text("clients: [{key: classic}]\n")
    with pytest.raises(KnowledgeError, match=r"clients\.yaml"):
        _cache.load_parts(data, Counting(), where=tmp_path)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "\x00\xff not json",
        lambda text: json.dumps([1, 2, 3]),
        # The right key over parts that do not fit the models.
        lambda text: json.dumps({**json.loads(text), "parts": {"findings": [{"id": 5}]}}),
        lambda text: text.replace('"severity":"error"', '"severity":"no such severity"', 1),
        lambda text: text.replace('"title":', '"no_such_field":', 1),
    ],
    ids=["truncated", "binary", "not-an-object", "wrong-parts", "bad-enum", "unknown-field"],
)
def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path, corrupt):
    validate = Counting()
    reference = _cache.load_parts(data_dir(), validate, where=tmp_path)
    path = _cache.cache_file(tmp_path, _cache.cache_key(data_dir()))
    path.write_text(corrupt(path.read_text()), errors="surrogateescape")
    parts = _cache.load_parts(data_dir(), validate, where=tmp_path)
    assert validate.calls == 2
    same(built(parts), reference)
    _cache.load_parts(data_dir(), validate, where=tmp_path)
    assert validate.calls == 2  # rewritten whole


def test_the_fixes_are_built_from_the_cache_one_entry_when_first_asked_for(tmp_path):
    reference = _cache.load_parts(data_dir(), Counting(), where=tmp_path)
    parts = _cache.load_parts(data_dir(), Counting(), where=tmp_path)
    fixes = parts["fixes"]
    assert isinstance(fixes, _cache.Indexed)
    assert list(fixes) == [f.finding for f in reference["fixes"]]
    knowledge = Knowledge(**parts)
    fix = knowledge.fix_for("tls.ok", "classic")
    assert fix == Knowledge(**reference).fix_for("tls.ok", "classic") and fix is not None
    assert list(fixes._built) == ["tls.ok"]  # the other entries are still JSON
    assert knowledge.fix_entry("tls.ok") is knowledge.fix_entry("tls.ok")  # built once


def test_an_edited_fixes_entry_is_found_when_used_and_everything_validated_again(tmp_path, caplog):
    validate = Counting()
    reference = _cache.load_parts(data_dir(), validate, where=tmp_path)
    path = _cache.cache_file(tmp_path, _cache.cache_key(data_dir()))
    document = json.loads(path.read_text())
    entry = next(e for e in document["parts"]["fixes"] if e["finding"] == "tls.ok")
    entry["clients"] = "not a map of clients"
    path.write_text(json.dumps(document))
    parts = _cache.load_parts(data_dir(), validate, where=tmp_path)
    assert validate.calls == 1  # the edit is in an entry not built yet
    assert parts["fixes"]["tls.ok"] == next(f for f in reference["fixes"] if f.finding == "tls.ok")
    assert validate.calls == 2 and "knowledge cache entry 'tls.ok' ignored" in caplog.text
    same(built(parts), reference)
    _cache.load_parts(data_dir(), validate, where=tmp_path)["fixes"]["tls.ok"]
    assert validate.calls == 2  # the cache was rewritten


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_cache_directory_only_costs_the_validation(tmp_path):
    tmp_path.chmod(0o500)
    try:
        validate = Counting()
        for _ in range(2):
            parts = _cache.load_parts(data_dir(), validate, where=tmp_path / "smtpcheck")
        assert validate.calls == 2 and parts["findings"]
    finally:
        tmp_path.chmod(0o700)


def test_a_cache_path_that_is_a_file_only_costs_the_validation(tmp_path):
    blocker = tmp_path / "smtpcheck"
    blocker.write_text("not a directory")
    validate = Counting()
    for _ in range(2):
        parts = _cache.load_parts(data_dir(), validate, where=blocker)
    assert validate.calls == 2 and parts["findings"]


def test_the_cache_lives_in_the_users_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cache.cache_dir() == tmp_path / "smtpcheck"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _cache.cache_dir() == tmp_path / ".cache" / "smtpcheck"


def test_the_key_covers_every_data_file_and_the_modelling_code(data):
    key = _cache.cache_key(data)
    assert _cache.cache_key(data) == key
    for path in sorted(data.glob("*.yaml")):
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        assert _cache.cache_key(data) != key, path.name
        path.write_bytes(original)
    (data / "fixes_new.yaml").write_text("fixes: []\n")  # a file added counts too
    assert _cache.cache_key(data) != key
    modules = {module.__name__ for module in _cache._CODE}
    assert {"diagnostics.knowledge._models", "diagnostics._models"} <= modules
    assert {"diagnostics.knowledge._loader", "diagnostics.knowledge._cache"} <= modules
