"""Does an SMS campaign keep its gateway's rate, and drop nothing?

    .venv/bin/python bench/campaign_send/sms_rate.py                  # 50 and 200 msg/s, 30 s each
    .venv/bin/python bench/campaign_send/sms_rate.py --rates 50 --seconds 10

For each rate, a hub (``open_hub``, in-process jobs, SQLite) with one Twilio
gateway configured at that rate sends the same number of SMS twice, to the
Twilio-shaped API of the tests (``tests/twilio_api.py``, its own process, so
the peer's work is not the hub's):

- **campaign**: a campaign to a static list of ``rate × seconds`` people, the
  whole path — the keeper, fill jobs writing the messages, the one dispatcher;
- **baseline**: the same number of one-off SMS queued through the API's service
  (``queue_sms``) before the gateway's dispatcher starts, then sent by the same dispatcher.

The peer stamps each message's arrival; achieved rate = (n - 1) / (last - first).
Printed: both rates, their ratio, the configured rate, and how many arrived of
how many meant (dropped = meant − arrived, duplicates by recipient). Target:
the campaign within ±1 % of the configured rate, nothing dropped or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


from audience import load_people

import commhub_twilio
from commhub.bootstrap import open_hub
from commhub.channels import ChannelContext
from commhub.config import Settings
from commhub.domain.campaigns import CampaignChannel
from commhub.models import (
    MessageTemplate,
)
from commhub.services import campaigns
from commhub.services.campaigns import CampaignDraft, Senders
from commhub.services.sms_sending import SmsRequest, queue_sms

NUMBER = "+15005550006"


def peer(port_out: Any, arrivals: Any) -> None:
    """The Twilio-shaped API in its own process; each arrival's monotonic time and recipient."""
    from twilio_api import TwilioApi

    class Stamped(TwilioApi):
        async def _create_message(self, request: Any) -> Any:
            answer = await super()._create_message(request)
            form = await request.post()
            arrivals.put((time.monotonic(), str(form.get("To", ""))))
            return answer

    async def run() -> None:
        api = Stamped()
        await api.start()
        port_out.put((api.base_url, api.account_sid, api.auth_token))
        await asyncio.Event().wait()

    asyncio.run(run())


async def one_run(
    rate: int, seconds: int, *, campaign: bool, api: tuple[str, str, str], arrivals: Any
) -> tuple[float, int, int]:
    count = rate * seconds
    folder = Path(tempfile.mkdtemp(prefix="commhub-sms-rate-"))
    settings = Settings(
        data_dir=folder,
        phone_region="RU",
        time_zone=midday_zone(),
        _env_file=None,  # type: ignore[call-arg]
    )
    base_url, sid, token = api
    gateway = commhub_twilio.adapter(
        name="twilio",
        options={
            "account_sid": sid,
            "auth_token": token,
            "numbers": [NUMBER],
            "api_base_url": base_url,
            "rate": rate,
        },
        context=ChannelContext(phone_region="RU", public_url="http://127.0.0.1:9"),
    )
    settings = settings.model_copy(update={"migrate_on_start": True})
    numbers = [f"+7916{n:07d}" for n in range(count)]
    if not campaign:
        # Queued whole before the gateway's dispatcher starts: queued while it ran, the one-off
        # messages would reach it only as fast as they were queued (~150/s, one commit each).
        queuing = await open_hub(settings, channels=[])
        try:
            async with queuing.sessions() as session:
                for number in numbers:
                    await queue_sms(
                        session,
                        [gateway],
                        SmsRequest(text="Скидка 10% до пятницы", to=number),
                        user_id=None,
                        region="RU",
                    )
        finally:
            await queuing.close()
    hub = await open_hub(settings, channels=[gateway])
    try:
        if campaign:
            segment_id, template_id = await people(hub, numbers)
            row = await campaigns.create(
                hub.sessions,
                CampaignDraft(
                    name="Rate",
                    channel=CampaignChannel.SMS,
                    segment_id=segment_id,
                    sms_template_id=template_id,
                    sms_gateway="twilio",
                    window_from=8 * 60,
                    window_to=22 * 60,
                ),
                user_id=None,
            )
            await campaigns.start(
                hub.sessions, row.id, Senders(mailboxes={}, sms_gateways={"twilio": (NUMBER,)})
            )
        else:
            hub.dispatch_now("twilio")
        stamps: list[tuple[float, str]] = []
        deadline = time.monotonic() + seconds * 3 + 60
        while len(stamps) < count and time.monotonic() < deadline:
            while not arrivals.empty():
                stamps.append(arrivals.get())
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)
        while not arrivals.empty():
            stamps.append(arrivals.get())
    finally:
        await hub.close()
    times = sorted(t for t, _ in stamps)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    doubled = sum(n - 1 for n in Counter(to for _, to in stamps).values() if n > 1)
    return achieved, len(stamps), doubled


def midday_zone() -> str:
    offset = (12 - time.gmtime().tm_hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


async def people(hub: Any, numbers: list[str]) -> tuple[int, int]:
    segment = await load_people(
        hub.engine, len(numbers), channel="sms", address=numbers.__getitem__
    )
    async with hub.sessions() as session:
        template = MessageTemplate(
            name="Sale", channel="sms", text="{{ contact.first_name }}, скидка 10%"
        )
        session.add(template)
        await session.commit()
        return segment, template.id


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ports, arrivals = context.Queue(), context.Queue()
    server = context.Process(target=peer, args=(ports, arrivals), daemon=True)
    server.start()
    api = ports.get(timeout=30)
    failed = False
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            meant = rate * args.seconds
            base, base_n, base_twice = await one_run(
                rate, args.seconds, campaign=False, api=api, arrivals=arrivals
            )
            got, got_n, got_twice = await one_run(
                rate, args.seconds, campaign=True, api=api, arrivals=arrivals
            )
            off = 100 * (got - rate) / rate
            ok = abs(off) <= 1.0 and got_n == meant and not got_twice
            failed |= not ok
            print(
                f"configured {rate:>4} msg/s, {meant:,} messages: campaign {got:8.2f} msg/s "
                f"({off:+.2f}%) arrived {got_n:,}/{meant:,} doubled {got_twice} | baseline one-off "
                f"{base:8.2f} msg/s arrived {base_n:,}/{meant:,} doubled {base_twice} | ratio "
                f"{got / base if base else 0:.3f} | target +-1%, 0 dropped: "
                f"{'PASS' if ok else 'FAIL'}"
            )
    finally:
        server.terminate()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
