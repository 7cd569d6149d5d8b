"""Marketers' templates rendered in Jinja2's immutable sandbox, within a time and a size.

The sandbox (Jinja2 ≥ 3.1.6, which closed the escapes of CVE-2024-56326 and
CVE-2025-27516) keeps a template from reaching Python; it does not keep one
from looping for hours or writing gigabytes. Both are bounded here, per
render, so a hostile or careless template fails *that* render with a clear
message and the process goes on:

- **size**: the output is produced piece by piece (``generate``) and stops at
  ``max_chars``; the operations that build one huge value at once — ``*``,
  ``**``, ``%`` on strings, ``~`` joins, filters like ``center`` or ``indent``
  with a large width, ``range`` — are checked before they run;
- **time**: on the main thread (the hub, the web process and the arq worker
  all render there) a ``SIGALRM`` timer interrupts a render that runs past
  ``max_seconds`` wherever it is in Python code, nested loops included.
  Elsewhere (a thread), the size checks and a deadline checked between
  pieces of output still hold.

Rendering a compiled template costs tens of microseconds; compiling costs
far more, so :class:`Compiled` is made once per template and reused.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from string import Formatter
from typing import Any, Final

from jinja2 import TemplateError, Undefined, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_CHARS: Final = 512 * 1024
MAX_SECONDS: Final = 0.5
MAX_RANGE: Final = 10_000
MAX_WIDTH: Final = 10_000
"""The widest ``center``/``indent``/``truncate``/``wordwrap`` a template may ask for."""


class RenderError(ValueError):
    """A template that cannot be rendered for these values, said for the person who wrote it."""


class _TooLong(Exception):
    pass


class _Missing(Undefined):
    """A variable the values do not have: renders empty, and is noted for the editor."""

    __slots__ = ()

    def _refused(self) -> bool:
        """Whether the sandbox refused this (an unsafe attribute), rather than it being absent."""
        try:
            return object.__getattribute__(self, "_undefined_exc") is SecurityError
        except AttributeError:
            return False

    def _note(self) -> None:
        if self._refused():  # say so, never render it blank
            self._fail_with_undefined_error()
        _noted().add(self._undefined_name or "?")

    def __str__(self) -> str:
        self._note()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._note()
        return iter(())

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        if self._refused():
            self._fail_with_undefined_error()
        return _Missing(name=f"{self._undefined_name}.{name}")


_local = threading.local()


def _noted() -> set[str]:
    found: set[str] | None = getattr(_local, "missing", None)
    if found is None:
        found = set()
        _local.missing = found
    return found


def _sized(value: Any, limit: int) -> Any:
    if isinstance(value, str | bytes | list | tuple) and len(value) > limit:
        raise _TooLong
    return value


_PERCENT_SPEC: Final = re.compile(r"%[-+ #0]*(\d+)?(?:\.(\d+))?")
_NUMBER: Final = re.compile(r"\d+")


def _narrow_spec(format_string: str, *, percent: bool) -> None:
    """Refuse a format string that pads or cuts to a huge width before it runs (in C)."""
    if percent:
        widths = [int(n) for m in _PERCENT_SPEC.finditer(format_string) for n in m.groups() if n]
    else:
        try:
            specs = [spec or "" for _, _, spec, _ in Formatter().parse(format_string)]
        except ValueError:
            return  # the call itself will say what is wrong
        widths = [int(n) for spec in specs for n in _NUMBER.findall(spec)]
    if any(width > MAX_WIDTH for width in widths):
        raise _TooLong


class _Namespace(Namespace):
    """``namespace()`` whose values are size-checked: a loop cannot double one into gigabytes."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _sized(value, MAX_CHARS))


class _Generator(CodeGenerator):
    """Jinja's code generator, with every ``~`` join size-checked as it is made."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every operation that can make a huge value checked first."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Generator

    def __init__(self, *, html: bool) -> None:
        # Block tags ({% if %}, {% set %}) leave no blank lines behind, as authors expect of text.
        super().__init__(autoescape=html, undefined=_Missing, trim_blocks=True, lstrip_blocks=True)
        self.globals["range"] = self._range
        self.globals["namespace"] = _Namespace
        for name in ("center", "indent", "truncate", "wordwrap"):
            self.filters[name] = self._narrow(self.filters[name])
        self.filters["join"] = self._join(self.filters["join"])
        self.filters["format"] = self._format(self.filters["format"])

    @staticmethod
    def sized(value: Any) -> Any:
        return _sized(value, MAX_CHARS)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        bound = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        if isinstance(bound, str):  # "...".format(...), wrapped by the sandbox
            _narrow_spec(bound, percent=False)
        return _sized(super().call(__context, __obj, *args, **kwargs), MAX_CHARS)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise _TooLong
            return left**right
        if operator == "*":
            for one, other in ((left, right), (right, left)):
                if isinstance(one, str | list | tuple) and isinstance(other, int):
                    if len(one) * other > MAX_CHARS:
                        raise _TooLong
            return left * right
        if operator == "%" and isinstance(left, str):
            _narrow_spec(left, percent=True)
        return _sized(
            super().call_binop(context, operator, left, right) if operator == "%" else left + right,
            MAX_CHARS,
        )

    @staticmethod
    def _range(*args: int) -> range:
        found = range(*args)
        if len(found) > MAX_RANGE:
            raise _TooLong
        return found

    @staticmethod
    def _narrow(filter_: Callable[..., Any]) -> Callable[..., Any]:
        def checked(*args: Any, **kwargs: Any) -> Any:
            for value in (*args[1:], *kwargs.values()):
                if isinstance(value, int) and not isinstance(value, bool) and value > MAX_WIDTH:
                    raise _TooLong
            return _sized(filter_(*args, **kwargs), MAX_CHARS)

        return checked

    @staticmethod
    def _join(filter_: Callable[..., Any]) -> Callable[..., Any]:
        @pass_eval_context
        def checked(eval_ctx: Any, *args: Any, **kwargs: Any) -> Any:
            return _sized(filter_(eval_ctx, *args, **kwargs), MAX_CHARS)

        return checked

    @staticmethod
    def _format(filter_: Callable[..., Any]) -> Callable[..., Any]:
        def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
            _narrow_spec(str(value), percent=True)
            return _sized(filter_(value, *args, **kwargs), MAX_CHARS)

        return checked


_TEXT = _Environment(html=False)
_HTML = _Environment(html=True)


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    missing: frozenset[str] = field(default_factory=frozenset)
    """Variables the template used that the values did not have (rendered empty)."""


class Compiled:
    """A template compiled once, rendered per recipient within the caps."""

    def __init__(self, source: str, *, html: bool = False) -> None:
        try:
            self._template = (_HTML if html else _TEXT).from_string(source)
        except TemplateError as exc:
            raise RenderError(_said(exc)) from None

    def render(
        self,
        values: Mapping[str, Any],
        *,
        max_chars: int = MAX_CHARS,
        max_seconds: float = MAX_SECONDS,
    ) -> Rendered:
        _local.missing = set()
        pieces: list[str] = []
        size = 0
        deadline = time.monotonic() + max_seconds
        try:
            with _alarm(max_seconds):
                for piece in self._template.generate(values):
                    size += len(piece)
                    if size > max_chars:
                        raise _TooLong
                    if time.monotonic() > deadline:
                        raise _Slow
                    pieces.append(piece)
        except _TooLong:
            raise RenderError(
                f"the message grows past {max_chars:,} characters: "
                "a loop or a repeated text makes it too long"
            ) from None
        except _Slow:
            raise RenderError(
                f"writing the message takes longer than {max_seconds:g} s: "
                "a loop in the template runs too long"
            ) from None
        except RecursionError:
            raise RenderError(
                "the template calls itself too deeply (a macro that never ends)"
            ) from None
        except TemplateError as exc:
            raise RenderError(_said(exc)) from None
        except (ArithmeticError, TypeError, ValueError, AttributeError, LookupError) as exc:
            raise RenderError(f"the template cannot be written: {exc}") from None
        missing = frozenset(_noted())
        if any(name.startswith("_") for name in missing):
            # What the sandbox hid (``__class__``, ``_TemplateReference__context``…) is an
            # attempt to leave it, not a value someone forgot to fill in: said, not blanked.
            raise RenderError("the template reaches for something a template may not use")
        return Rendered("".join(pieces), missing)


class _Slow(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Slow


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` with :class:`_Slow`: only on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _said(exc: TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    message = str(exc.message if getattr(exc, "message", None) else exc)
    if "unsafe" in message or "not safely callable" in message or "access to attribute" in message:
        message = "this template reaches for something a template may not use"
    return f"line {line}: {message}" if line else message


@lru_cache(maxsize=64)
def compiled(source: str, *, html: bool = False) -> Compiled:
    """The template compiled, kept for the next recipients of the same campaign."""
    return Compiled(source, html=html)


def render_text(source: str, values: Mapping[str, Any], *, html: bool = False) -> str:
    """Render ``source`` (compiled once per distinct text) for ``values``."""
    return compiled(source, html=html).render(values).text


def check_source(source: str, *, html: bool = False) -> None:
    """Raise :class:`RenderError` with the line for a template that does not compile."""
    try:
        (_HTML if html else _TEXT).parse(source)
    except TemplateError as exc:
        raise RenderError(_said(exc)) from None
