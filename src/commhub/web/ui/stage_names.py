"""Pipeline and stage names as a viewer reads them.

A shipped pipeline or stage (the default "Sales" pipeline and its stages)
keeps no name of its own, only its preset: it is shown in each viewer's
language until an admin renames it, and from then on as the admin wrote it.
Every console page that names a stage goes through here, so the board, the
deal page, the funnel and the admin page agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from commhub.domain.deals import PRESET_NAMES

Translate = Callable[[str], str]


class Named(Protocol):
    """A pipeline or a stage: an admin's name, else a shipped preset."""

    @property
    def name(self) -> str: ...

    @property
    def preset(self) -> str | None: ...


def stage_name(stage: Named, translate: Translate) -> str:
    """The stage's name in the viewer's language (``translate``: the page's gettext)."""
    if stage.name:
        return stage.name
    shipped = PRESET_NAMES.get(stage.preset or "")
    return translate(shipped) if shipped is not None else stage.preset or ""


def pipeline_name(pipeline: Named, translate: Translate) -> str:
    """The pipeline's name in the viewer's language, as for a stage."""
    return stage_name(pipeline, translate)
