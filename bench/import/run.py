"""Benchmark: import a million-row prospect base from CSV into a fresh database.

    .venv/bin/python bench/import/run.py [--rows 1000000 100000] [--backend sqlite|postgres]

For each size, in its own process (so peak RSS belongs to that size alone):
generates ``bench/data/import-<rows>.csv`` once (mixed RU/GB/US/DE phone
formats, e-mails, tags, consents, ~3 % bad rows and in-file duplicates),
reads it with a bare ``csv.reader`` (the baseline: the cost of just reading
the file), then runs ``commhub.services.importer.import_contacts`` on it into
a fresh database, and prints rows/s for both, the ratio, total seconds and
peak RSS. Target: 1M rows in <= 60 s on the embedded SQLite default, with
peak RSS flat between 100k and 1M rows.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from commhub.domain.imports import ImportMapping
from commhub.services.importer import import_contacts
from commhub.store.engine import open_engine, session_factory
from commhub.store.migrate import upgrade

DATA: Final = Path(__file__).resolve().parents[1] / "data"
TARGET_S: Final = 60.0
HEADER: Final = [
    "Full name",
    "Company",
    "Mobile",
    "Work phone",
    "E-mail",
    "Tags",
    "SMS ok",
    "Mail ok",
    "City",
]
MAPPING: Final = {
    "name": "Full name",
    "company": "Company",
    "phones": ["Mobile", "Work phone"],
    "emails": "E-mail",
    "tags": {"column": "Tags", "separator": ";"},
    "consents": {"sms:marketing": "SMS ok", "email:marketing": "Mail ok"},
    "extra": {"city": "City"},
    "region": "RU",
}
FIRST: Final = ["Ivan", "Anna", "Олег", "Мария", "John", "Emma", "Klaus", "Sophie", "Пётр", "Li"]
LAST: Final = ["Petrov", "Иванова", "Smith", "Müller", "Brown", "Сидоров", "Jones", "Wagner"]
CITIES: Final = ["Moscow", "Санкт-Петербург", "London", "New York", "Berlin", "Kazan", ""]
TAGS: Final = ["vip", "expo-2024", "cold", "warm", "partner", "Клиент"]
ANSWERS: Final = ["yes", "no", "", "", "да", "нет", "1", "0", "TRUE"]
BAD_PHONES: Final = ["12345", "n/a", "+7 900", "8 800 CALL-NOW", "0"]


def mobile(i: int, rng: random.Random) -> str:
    """A unique number for row ``i``, written the way real spreadsheets write numbers."""
    roll = rng.random()
    if roll < 0.04:
        return f"+44 7911 {i:06d}"
    if roll < 0.07:
        return f"+1 (212) 2{i // 10000 % 100:02d}-{i % 10000:04d}"
    if roll < 0.09:
        return f"+49 30 {10000000 + i}"
    digits = f"900{i:07d}"
    style = rng.randrange(6)
    if style == 0:
        return f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    if style == 1:
        return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    if style == 2:
        return f"8{digits}"
    if style == 3:
        return f"+7{digits}"
    if style == 4:
        return f"7 {digits[:3]} {digits[3:]}"
    return f"8-{digits[:3]}-{digits[3:6]}-{digits[6:8]}-{digits[8:]}"


def generate(path: Path, rows: int) -> None:
    rng = random.Random(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            phone = mobile(i, rng)
            email = f"{first.lower()}.{i}@example{i % 50}.com" if rng.random() < 0.6 else ""
            roll = rng.random()
            if roll < 0.015:
                phone = rng.choice(BAD_PHONES)
            elif roll < 0.02:
                phone, email = "", ""
            elif roll < 0.03 and i > 100:
                phone = mobile(i - 100, random.Random(i - 100))  # a number an earlier row used
            writer.writerow(
                [
                    f"{first} {last}",
                    f"Company {rng.randrange(5000)} LLC" if rng.random() < 0.6 else "",
                    phone,
                    f"8 (495) {1000000 + i:07d}" if rng.random() < 0.25 else "",
                    email.upper() if rng.random() < 0.05 else email,
                    ";".join(rng.sample(TAGS, rng.randrange(3))) if rng.random() < 0.3 else "",
                    rng.choice(ANSWERS),
                    rng.choice(ANSWERS),
                    rng.choice(CITIES),
                ]
            )
    partial.rename(path)


def baseline(path: Path) -> tuple[int, float]:
    """Rows and seconds for a bare csv.reader pass over the file."""
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as source:
        count = sum(1 for _ in csv.reader(source)) - 1
    return count, time.perf_counter() - started


async def import_once(path: Path, database_url: str) -> tuple[int, float, str]:
    engine = open_engine(database_url)
    try:
        await upgrade(engine)
        report = await import_contacts(
            session_factory(engine),
            path,
            ImportMapping.from_dict(MAPPING),
            region="RU",
            dry_run=False,
            errors_path=DATA / f"{path.stem}-rejected.csv",
        )
    finally:
        await engine.dispose()
    summary = f"created {report.created}, merged {report.merged}, rejected {report.rejected}"
    return report.rows, report.seconds, summary


def one(rows: int, backend: str) -> None:
    path = DATA / f"import-{rows}.csv"
    if not path.exists():
        print(f"generating {path} …", flush=True)
        generate(path, rows)
    if backend == "sqlite":
        database = DATA / f"import-{rows}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{database}"
    else:
        url = os.environ["COMMHUB_BENCH_POSTGRES_URL"]
    read_rows, read_s = baseline(path)
    done, import_s, summary = asyncio.run(import_once(path, url))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The parsing processes have ended by now, so RUSAGE_CHILDREN holds the largest of them.
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    base_rate, rate = read_rows / read_s, done / import_s
    verdict = "" if rows < 1_000_000 else ("  OK" if import_s <= TARGET_S else "  OVER TARGET")
    print(
        f"{backend} {rows:>9} rows | csv.reader {base_rate:>10,.0f} rows/s ({read_s:.1f}s) | "
        f"import {rate:>8,.0f} rows/s ({import_s:.1f}s) | ratio {base_rate / rate:.0f}x | "
        f"peak RSS {peak_mb:.0f} MB (+ parse worker {worker_mb:.0f} MB) | {summary}{verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.rows[0], args.backend)
        return
    for rows in args.rows:
        command = [sys.executable, __file__, "--one", "--rows", str(rows)]
        subprocess.run([*command, "--backend", args.backend], check=True)


if __name__ == "__main__":
    main()
