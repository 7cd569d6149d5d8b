"""The app on each database backend, with one account per role (see tests/app_fixtures.py)."""

from app_fixtures import accounts, admin, client, manager, operator, settings

__all__ = ["accounts", "admin", "client", "manager", "operator", "settings"]
