"""Failed-login counting: guesses are limited per username and client, and age out."""

from __future__ import annotations

from commhub.domain.login_attempts import LoginAttempts


def test_tenth_failure_blocks_that_username_from_that_client_until_the_window_passes() -> None:
    attempts = LoginAttempts(limit=10, window_s=900)
    for second in range(10):
        assert attempts.retry_after("olga", "10.0.0.5", float(second)) is None
        attempts.failed("olga", "10.0.0.5", float(second))
    assert attempts.retry_after("olga", "10.0.0.5", 60.0) == 840.0
    assert attempts.retry_after("Olga ", "10.0.0.5", 60.0) == 840.0
    assert attempts.retry_after("olga", "10.0.0.9", 60.0) is None
    assert attempts.retry_after("pavel", "10.0.0.5", 60.0) is None
    assert attempts.retry_after("olga", "10.0.0.5", 900.0) is None


def test_right_password_clears_the_count() -> None:
    attempts = LoginAttempts(limit=3, window_s=900)
    for second in range(2):
        attempts.failed("olga", "c", float(second))
    attempts.succeeded("olga", "c")
    attempts.failed("olga", "c", 5.0)
    attempts.failed("olga", "c", 6.0)
    assert attempts.retry_after("olga", "c", 7.0) is None


def test_memory_stays_bounded_under_a_spray_of_usernames() -> None:
    attempts = LoginAttempts(limit=3, window_s=900, capacity=100)
    for n in range(10_000):
        attempts.failed(f"user{n}", "c", float(n % 900))
    assert len(attempts) == 100
