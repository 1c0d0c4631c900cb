"""Server replies: known ones from the data, anything else decoded from RFC 3463 structure."""

from __future__ import annotations

from collections.abc import Sequence

from diagnostics._models import Severity
from diagnostics.knowledge._linear import MAX_REPLY_TEXT, compile_linear
from diagnostics.knowledge._models import RepliesFile, ReplyMeaning, ReplyRule, Stage

_ENHANCED = compile_linear(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Where a reply is seen without the stage (pasted text), the basic code tells it well enough.
# Only codes whose meaning is the same wherever they come (RFC 4954 login replies).
_STAGE_BY_CODE: dict[int, Stage] = {535: "auth", 534: "auth", 538: "auth"}


def enhanced_code(message: str) -> str | None:
    """The enhanced status code at the start of a reply text ("5.7.139 Authentication ...")."""
    match = _ENHANCED.match(message)
    return ".".join(match.groups()) if match else None


class ReplyClassifier:
    """Match replies against the data rules, most specific first."""

    def __init__(self, data: RepliesFile) -> None:
        self._data = data
        self._patterns = {
            rule.id: compile_linear(rule.pattern) for rule in data.rules if rule.pattern
        }

    @property
    def rules(self) -> Sequence[ReplyRule]:
        return self._data.rules

    def classify(
        self, code: int, message: str, *, stage: Stage | None, provider_key: str | None = None
    ) -> ReplyMeaning | None:
        """The meaning of a failure reply; None for success and intermediate replies."""
        if code < 400 or code > 599:
            return None
        message = message[:MAX_REPLY_TEXT]
        enhanced = enhanced_code(message)
        best: tuple[int, int, ReplyRule] | None = None
        for order, rule in enumerate(self._data.rules):
            score = self._score(rule, code, message, enhanced, stage, provider_key)
            if score is not None and (best is None or (score, -order) > best[:2]):
                best = (score, -order, rule)
        if best is not None:
            rule = best[2]
            return ReplyMeaning(
                finding_id=rule.finding_id,
                severity=rule.severity,
                meaning=rule.meaning,
                code=code,
                enhanced=enhanced,
                variant=rule.variant,
                variant_detail=rule.variant_detail,
                transient=code < 500,
                rule=rule.id,
                scope=rule.scope,
                sources=rule.sources,
            )
        return self.decode(code, message, stage=stage)

    def _score(
        self,
        rule: ReplyRule,
        code: int,
        message: str,
        enhanced: str | None,
        stage: Stage | None,
        provider_key: str | None,
    ) -> int | None:
        score = rule.priority
        if rule.codes:
            if code not in rule.codes:
                return None
            score += 1
        if rule.enhanced:
            if enhanced is None or not _enhanced_matches(rule.enhanced, enhanced):
                return None
            score += 2
        if rule.pattern:
            if not self._patterns[rule.id].search(message):
                return None
            score += 4
        if rule.stages and stage is not None and stage not in rule.stages:
            return None
        if rule.providers:
            if provider_key is not None and provider_key not in rule.providers:
                return None
            if provider_key is not None:
                score += 1
        return score

    def decode(self, code: int, message: str, *, stage: Stage | None) -> ReplyMeaning:
        """A generic meaning from the reply's structure (RFC 5321 code, RFC 3463 parts)."""
        data = self._data
        enhanced = enhanced_code(message)
        parts: list[str] = []
        sources: list[str] = []
        basic = data.basic.get(code)
        if basic:
            parts.append(f"{code}: {basic.meaning}")
            sources += basic.sources
        if enhanced:
            klass, subject, detail = (int(p) for p in enhanced.split("."))
            words = []
            for text in (
                data.classes.get(klass),
                data.subjects.get(subject),
                data.details.get(f"{subject}.{detail}"),
            ):
                if text:
                    words.append(text.meaning)
                    sources += text.sources
            if words:
                parts.append(f"{enhanced}: " + "; ".join(words))
        if not parts:
            klass_text = data.classes.get(code // 100)
            parts.append(f"{code}: {klass_text.meaning if klass_text else 'an error reply'}")
        guessed = stage or _STAGE_BY_CODE.get(code)
        if guessed is None:
            # A pasted reply no rule knows: say what its code means and quote the server's
            # reason; never guess a cause (a sender or login problem) the reply does not say.
            return ReplyMeaning(
                finding_id=data.unrecognised_finding,
                severity=Severity.WARN if code < 500 else Severity.ERROR,
                meaning=". ".join(parts) + ". " + _neutral(code, message),
                code=code,
                enhanced=enhanced,
                transient=code < 500,
                rule=None,
                scope="unknown",
                sources=tuple(dict.fromkeys(sources)),
            )
        return ReplyMeaning(
            finding_id=data.stage_findings[guessed],
            severity=Severity.ERROR,
            meaning=". ".join(parts) + ".",
            code=code,
            enhanced=enhanced,
            transient=code < 500,
            rule=None,
            sources=tuple(dict.fromkeys(sources)),
        )


def _neutral(code: int, message: str) -> str:
    reason = _ENHANCED.sub("", message, count=1).strip(" -:;") if message else ""
    reason = " ".join(reason.split())[:300]
    said = f' The server\'s reason: "{reason}".' if reason else ""
    if code < 500:
        return "This is temporary: trying again later may work." + said
    return "This is permanent: something must change before it will work." + said


def _enhanced_matches(rule: str, enhanced: str) -> bool:
    """Rule "x.7.0" matches 4.7.0 and 5.7.0; "5.7.139" only itself."""
    rule_class, _, rest = rule.partition(".")
    got_class, _, got_rest = enhanced.partition(".")
    return rest == got_rest and rule_class in ("x", got_class)
