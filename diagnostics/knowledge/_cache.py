"""The validated knowledge base, kept between runs: validate once, then construct from JSON.

Reading the YAML files and validating them costs every process ~100 ms (issue 16). After the
first validation the parts `Knowledge` is built from are written as JSON to
`$XDG_CACHE_HOME/smtpcheck/` (else `~/.cache/smtpcheck/`), under a key hashing every data
file and the code that validates and models them. A later run whose key matches builds the
models with pydantic's `model_construct` (no validation: the data was validated when it was
written); any change to a data file or to that code changes the key, so a stale entry is
never used. A cache that cannot be read, parsed or built is ignored (and rewritten); one
that cannot be written is skipped. JSON, so a cache file holds data only, never code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import functools
import hashlib
import json
import logging
import os
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pydantic

from diagnostics import _models as report_models
from diagnostics.knowledge import _loader, _models

log = logging.getLogger(__name__)

FORMAT = 1
KEPT = 4  # entries kept: installs or checkouts of other versions do not evict each other
# The code whose change makes a cached entry stale: the file schemas, the report enums they
# use, the checks the loader makes, and this module's encoding.
_CODE = (_models, report_models, _loader, sys.modules[__name__])


class _Mismatch(Exception):
    """The cached data does not fit the models (an edited or truncated cache file)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "smtpcheck")


def cache_file(where: Path, key: str) -> Path:
    """One file per key, so that two versions in use (two installs, a checkout and its bench)
    do not replace each other's entry at every run."""
    return where / f"knowledge-{key[:32]}.json"


def cache_key(directory: Path) -> str:
    """A hash of the data files (names and bytes), the modelling code and the versions."""
    digest = hashlib.sha256(f"{FORMAT} {sys.version} {pydantic.VERSION}".encode())
    for path in sorted(directory.glob("*.yaml")):
        digest.update(f"\0{path.name}\0".encode())
        digest.update(path.read_bytes())
    for module in _CODE:
        digest.update(f"\0{module.__name__}\0".encode())
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def load_parts(
    directory: Path, validate: Callable[[Path], dict[str, Any]], *, where: Path | None = None
) -> dict[str, Any]:
    """The keyword arguments of `Knowledge`: from the cache when current, else validated."""
    where = cache_dir() if where is None else where
    try:
        key = cache_key(directory)
    except OSError:
        return validate(directory)  # the loader names the unreadable file

    def validated() -> dict[str, Any]:
        parts = validate(directory)
        _write(where, key, parts)
        return parts

    # Also when an entry built later does not fit (`Indexed`: an edited cache file).
    return _read(cache_file(where, key), key, fallback=validated) or validated()


def _hints() -> dict[str, Any]:
    from diagnostics.knowledge._kb import Knowledge

    hints = typing.get_type_hints(Knowledge.__init__)
    hints.pop("return", None)
    return hints


def _read(path: Path, key: str, *, fallback: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("knowledge cache %s ignored: %s", path, exc)
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None  # another version of the data or code: validated again, then replaced
    try:
        return {
            name: _indexed(name, data["parts"][name], fallback)
            if name in INDEXED
            else _build(hint, data["parts"][name])
            for name, hint in _hints().items()
        }
    except (_Mismatch, KeyError, TypeError, ValueError) as exc:
        log.info("knowledge cache %s ignored: %s", path, exc)
        return None


def _write(where: Path, key: str, parts: dict[str, Any]) -> None:
    """Keep the validated parts as JSON; a cache that cannot be written is only logged."""
    try:
        # Every field, defaults too: model_construct then resolves no default (its slow part).
        encoded = {
            name: pydantic.TypeAdapter(hint).dump_python(parts[name], mode="json")
            for name, hint in _hints().items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("knowledge cache not written: %s", exc)
        return
    document = {"key": key, "format": FORMAT, "parts": encoded}
    temporary: str | None = None
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=where, suffix=".tmp", delete=False) as out:
            temporary = out.name
            json.dump(document, out, separators=(",", ":"))
        os.replace(temporary, cache_file(where, key))  # readers see the old file or the new one
        _prune(where)
    except OSError as exc:
        log.info("knowledge cache not written to %s: %s", where, exc)
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _prune(where: Path) -> None:
    """Remove all but the KEPT most recently written entries."""
    entries = []
    for path in where.glob("knowledge-*.json"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime_ns, path))
    for _, path in sorted(entries, reverse=True)[KEPT:]:
        with contextlib.suppress(OSError):
            path.unlink()


# --------------------------------------------------------------------------- lazy parts

# Parts kept as JSON and built entry by entry when first asked for, by the field that keys
# them: the fixes are 60 % of the cache, and a diagnosis needs those of its few findings.
INDEXED: dict[str, tuple[type[pydantic.BaseModel], str]] = {"fixes": (_models.FixEntry, "finding")}


def _indexed(name: str, value: Any, fallback: Callable[[], dict[str, Any]]) -> Indexed:
    model, field = INDEXED[name]
    raw: dict[str, Any] = {}
    for entry in _list(value):
        entry_key = _dict(entry).get(field)
        if type(entry_key) is not str or entry_key in raw:
            raise _Mismatch(f"{name}: an entry without a unique {field}")
        raw[entry_key] = entry
    return Indexed(raw, _builder(model), lambda: {getattr(e, field): e for e in fallback()[name]})


class Indexed(Mapping[str, Any]):
    """A cached part's entries by key, each built (`model_construct`) when first asked for.

    An entry that does not fit the models (the cache file was edited: the key covers the
    data and the code, not the cache itself) is logged, and this process takes every entry
    from the data files, validated again (`fallback`, which also rewrites the cache).
    """

    def __init__(
        self, raw: dict[str, Any], build: _Builder, fallback: Callable[[], dict[str, Any]]
    ) -> None:
        self._raw = raw
        self._build = build
        self._fallback = fallback
        self._built: dict[str, Any] = {}  # two threads may build one entry: equal values

    def __getitem__(self, entry_key: str) -> Any:
        try:
            return self._built[entry_key]
        except KeyError:
            pass
        raw = self._raw[entry_key]  # KeyError: not in this part
        try:
            built = self._build(raw)
        except (_Mismatch, KeyError, TypeError, ValueError) as exc:
            log.warning("knowledge cache entry %r ignored: %s", entry_key, exc)
            self._built = self._fallback()
            return self._built[entry_key]
        self._built[entry_key] = built
        return built

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


# --------------------------------------------------------------------------- JSON -> models

_Builder = Callable[[Any], Any]


def _build(hint: Any, value: Any) -> Any:
    """`value` (JSON) as the type `hint` names, models by `model_construct`; else _Mismatch."""
    return _builder(hint)(value)


@functools.cache
def _builder(hint: Any) -> _Builder:
    """A function from JSON to `hint`, made once per type (the walk is the cost of a load)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _builder(args[0])
    if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
        return _model_builder(hint)
    if origin in (typing.Union, types.UnionType):
        return _union_builder(hint, args)
    if origin is typing.Literal:
        return functools.partial(_literal, frozenset(args))
    if origin in (tuple, Sequence, list, frozenset, set):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            members = [_builder(arg) for arg in args]
            return lambda value: tuple(b(v) for b, v in zip(members, _list(value), strict=True))
        item = _builder(args[0])
        container = origin if origin in (list, frozenset, set) else tuple
        return lambda value: container([item(v) for v in _list(value)])
    if origin in (dict, Mapping):
        key = int if args[0] is int else _builder(args[0])  # JSON keys are strings
        item = _builder(args[1])
        return lambda value: {key(k): item(v) for k, v in _dict(value).items()}
    return _scalar_builder(hint)


def _model_builder(model: type[pydantic.BaseModel]) -> _Builder:
    fields: dict[str, _Builder] = {}

    def build(value: Any) -> Any:
        if not fields:  # filled on first use: a model may refer to itself
            hints: dict[str, Any] = {k: f.annotation for k, f in model.model_fields.items()}
            fields.update({name: _builder(hint) for name, hint in hints.items()})
        return model.model_construct(**{k: fields[k](v) for k, v in _dict(value).items()})

    return build


def _union_builder(hint: Any, args: tuple[Any, ...]) -> _Builder:
    members = [(_json_kind(arg), _builder(arg)) for arg in args if arg is not type(None)]
    optional = type(None) in args

    def build(value: Any) -> Any:
        if value is None and optional:
            return None
        kind = list if isinstance(value, list) else dict if isinstance(value, dict) else None
        for member_kind, member in members:
            if member_kind is kind:
                try:
                    return member(value)
                except (_Mismatch, ValueError, TypeError):
                    continue
        raise _Mismatch(f"{value!r:.40} fits none of {hint}")

    return build


def _json_kind(hint: Any) -> type | None:
    """The JSON container a union member is written as (list, dict), None for a scalar."""
    origin = typing.get_origin(hint) or hint
    if origin is typing.Annotated:
        return _json_kind(typing.get_args(hint)[0])
    if origin in (tuple, Sequence, list, frozenset, set):
        return list
    if origin in (dict, Mapping) or (
        isinstance(origin, type) and issubclass(origin, pydantic.BaseModel)
    ):
        return dict
    return None  # a scalar: the member's builder decides


def _scalar_builder(hint: Any) -> _Builder:
    if hint is Any:
        return lambda value: value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if hint is dt.date:
        return lambda value: dt.date.fromisoformat(_typed(str, value))
    if hint is float:
        return lambda value: float(value if type(value) is int else _typed(float, value))
    if hint in (str, int, bool):
        return functools.partial(_typed, hint)
    raise _Mismatch(f"the cache cannot hold a {hint}")


def _typed(kind: type, value: Any) -> Any:
    if type(value) is not kind:
        raise _Mismatch(f"{value!r:.40} is not a {kind.__name__}")
    return value


def _literal(allowed: frozenset[Any], value: Any) -> Any:
    if value not in allowed:
        raise _Mismatch(f"{value!r:.40} is not one of {sorted(map(str, allowed))}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Mismatch("expected a list")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Mismatch("expected an object")
    return value
