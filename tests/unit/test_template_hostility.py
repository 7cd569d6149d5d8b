"""Hostile templates: sandbox escapes, endless loops, huge output; a clear error, process alive.

Each payload fails its own render within the caps (half a second, 512 KiB)
with a message for the person who wrote it; the next ordinary render works.
The escapes are the published ones of CVE-2024-56326 (str.format reached
indirectly) and CVE-2025-27516 (the ``attr`` filter to ``format``), and the
classic server-side template injections.
"""

from __future__ import annotations

import time

import pytest

from commhub.domain.template_render import Compiled, RenderError, check_source, render_text

VALUES = {"contact": {"name": "Анна", "first_name": "Анна"}, "deal": {}}

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    # CVE-2024-56326: str.format reached through a stored reference
    "{% set f = 'x{0.__class__}'.format %}{{ f(contact) }}",
    "{{ '{0.__class__.__base__.__subclasses__}'.format(contact) }}",
    # CVE-2025-27516: the attr filter to format
    "{{ 'x{0.__class__}'|attr('format')(contact) }}",
    "{% set a = 'x'|attr('__class__') %}{{ a.__mro__ }}",
    "{{ contact.__class__.__init__.__globals__ }}",
]

EXPLOSIONS = [
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in range(9999) %}{% for b in range(9999) %}{% for c in range(9999) %}"
    "x{% endfor %}{% endfor %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ ['x'] * 100000000 }}",
    "{{ 2 ** 100000000 }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ 'x'|indent(1000000000, true) }}",
    "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(60) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}",
    "{{ range(10000)|join(',' * 1000) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_sandbox_escape_fails_with_a_clear_message(source: str) -> None:
    with pytest.raises(RenderError) as failed:
        render_text(source, VALUES)
    assert "Traceback" not in str(failed.value)
    assert render_text("Hello {{ contact.name }}", VALUES) == "Hello Анна"


@pytest.mark.parametrize("source", EXPLOSIONS)
def test_a_template_that_loops_or_explodes_fails_in_time_and_leaves_the_process_well(
    source: str,
) -> None:
    began = time.monotonic()
    with pytest.raises(RenderError) as failed:
        Compiled(source).render(VALUES)
    assert time.monotonic() - began < 3.0
    said = str(failed.value)
    assert any(w in said for w in ("too long", "longer than", "too deeply", "cannot be written"))
    assert render_text("{{ contact.first_name }}!", VALUES) == "Анна!"


def test_missing_variables_render_empty_and_are_named() -> None:
    shown = Compiled(
        "Hi {{ contact.first_name }} {{ contact.nickname }}, "
        "{{ deal.title | default('our offer') }}"
    ).render(VALUES)
    assert shown.text == "Hi Анна , our offer"
    assert shown.missing == {"nickname"}


def test_html_is_escaped_and_text_is_not() -> None:
    values = {"contact": {"name": "<b>A&B</b>"}}
    assert render_text("{{ contact.name }}", values, html=True) == "&lt;b&gt;A&amp;B&lt;/b&gt;"
    assert render_text("{{ contact.name }}", values) == "<b>A&B</b>"


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(RenderError) as failed:
        check_source("Hello\n{% if x %}\nno end")
    assert str(failed.value).startswith("line ")
