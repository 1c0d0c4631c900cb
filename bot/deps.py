"""What listeners need besides the Bolt arguments, injected as context["deps"]."""

from __future__ import annotations

import dataclasses
from typing import Any

from bot.runner import Runner
from bot.settings import BotSettings
from bot.store.base import BotStore
from diagnostics import EngineConfig


@dataclasses.dataclass(frozen=True, slots=True)
class Deps:
    settings: BotSettings
    engine_config: EngineConfig
    store: BotStore
    runner: Runner


def deps_of(context: Any) -> Deps:
    """The Deps `build_app`'s middleware put in the Bolt context."""
    deps: Deps = context["deps"]
    return deps
