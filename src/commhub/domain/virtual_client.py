"""A made-up client for previews: every variable a template may use, filled plausibly.

A marketer writing a template before the base holds anyone suitable still
needs to see it written out; so does one who would rather not open a real
person's card. The values look real in the template's language and are
clearly nobody.
"""

from __future__ import annotations

from typing import Any, Final

_EN: Final[dict[str, Any]] = {
    "contact": {
        "name": "Alex Morgan",
        "first_name": "Alex",
        "last_name": "Morgan",
        "company": "Northwind Trading",
        "email": "alex.morgan@example.com",
        "phone": "+44 20 7946 0958",
        "city": "London",
    },
    "company": {"name": "Northwind Trading"},
    "owner": {"name": "Jamie Lee", "extension": "201"},
    "deal": {
        "title": "Annual supply contract",
        "amount": "£12,500.00",
        "currency": "GBP",
        "stage": "Proposal / invoice",
    },
}

_RU: Final[dict[str, Any]] = {
    "contact": {
        "name": "Анна Смирнова",
        "first_name": "Анна",
        "last_name": "Смирнова",
        "company": "ООО «Ромашка»",
        "email": "anna.smirnova@example.ru",
        "phone": "+7 916 123-45-67",
        "city": "Казань",
    },
    "company": {"name": "ООО «Ромашка»"},
    "owner": {"name": "Иван Петров", "extension": "201"},
    "deal": {
        "title": "Годовой контракт на поставку",
        "amount": "125 000,00 ₽",
        "currency": "RUB",
        "stage": "Предложение / счёт",
    },
}


def virtual_client(language: str) -> dict[str, Any]:
    """The made-up client in ``language`` (Russian for ``ru…``, else English); a fresh copy."""
    chosen = _RU if language.lower().startswith("ru") else _EN
    return {key: dict(value) for key, value in chosen.items()}
