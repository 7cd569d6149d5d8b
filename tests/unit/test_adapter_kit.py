"""The adapters' shared scaffolding: settings errors a person can act on, and a backoff
that neither hammers a peer nor waits longer than its ceiling."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, SecretStr

from commhub import adapter_kit
from commhub.adapter_kit import Backoff, callback_base, read_options
from commhub.channels import ChannelConfigError


class _Options(BaseModel):
    host: str
    password: SecretStr
    port: int = Field(default=5038, ge=1, le=65535)


def test_a_bad_setting_is_named_with_its_channel_and_never_shows_its_value() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        read_options(_Options, {"host": "pbx", "password": "s3cret!", "port": 0}, "PBX 'main'")
    message = str(caught.value)
    assert message.startswith("PBX 'main': port: ")
    assert "s3cret" not in message
    with pytest.raises(ChannelConfigError, match="PBX 'main': password: Field required"):
        read_options(_Options, {"host": "pbx"}, "PBX 'main'")


def test_the_callback_url_falls_back_to_the_hubs_and_one_of_them_is_required() -> None:
    assert callback_base("gw", "https://own.example", None, why="x") == "https://own.example"
    assert callback_base("gw", None, "https://hub.example/", why="x") == "https://hub.example"
    with pytest.raises(ChannelConfigError, match="gw: public_url: required .*: reports come"):
        callback_base("gw", None, None, why="reports come there")
    with pytest.raises(ChannelConfigError, match="gw: the hub's public URL"):
        callback_base("gw", None, "ftp://hub", why="x")


def test_pauses_double_with_jitter_up_to_the_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_kit.random, "random", lambda: 0.5)  # the middle of the jitter
    backoff = Backoff(1.0, 10.0)
    backoff.attempt()
    assert [backoff.pause() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    monkeypatch.setattr(adapter_kit.random, "random", lambda: 0.0)
    assert backoff.pause() == pytest.approx(8.0)  # -20 %


def test_a_connection_that_held_starts_the_ladder_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_kit.random, "random", lambda: 0.5)
    clock = [100.0]
    monkeypatch.setattr(adapter_kit.time, "monotonic", lambda: clock[0])
    backoff = Backoff(1.0, 60.0, stable_after_s=30.0)
    for _ in range(4):
        backoff.attempt()
        backoff.pause()
    backoff.attempt()
    clock[0] += 31.0  # this one held for half a minute before it dropped
    assert backoff.pause() == 1.0
