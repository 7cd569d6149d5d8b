"""Interim: campaign templates in Jinja2's immutable sandbox (domain.templates replaces it)."""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_TEXT = ImmutableSandboxedEnvironment(autoescape=False)
_HTML = ImmutableSandboxedEnvironment(autoescape=True)


class RenderError(ValueError):
    """A template that cannot be rendered for these values."""


def render_text(source: str, values: dict[str, Any], *, html: bool = False) -> str:
    try:
        return (_HTML if html else _TEXT).from_string(source).render(values)
    except TemplateError as exc:
        raise RenderError(str(exc)) from None


def check_source(source: str, *, html: bool = False) -> None:
    """Raise :class:`RenderError` with the line for a template that does not compile."""
    try:
        (_HTML if html else _TEXT).parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise RenderError(f"line {line}: {exc}" if line else str(exc)) from None
