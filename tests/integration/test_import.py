"""Spreadsheet import against real SQLite and PostgreSQL, with real CSV and XLSX files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from commhub.cli import main
from commhub.config import Settings
from commhub.domain.contacts import ConsentChoice, ContactDraft, ContactView
from commhub.domain.imports import ImportMapping, MappingError
from commhub.domain.phones import parse_phone
from commhub.jobs.imports import run_import
from commhub.models import Company, Consent, ConsentEvent, Contact, ContactPoint, Import
from commhub.services.contacts import create_contact
from commhub.services.importer import ImportProgress, ImportReport, import_contacts
from commhub.services.spreadsheets import SheetError
from commhub.store import contacts as contact_store
from commhub.store.engine import SessionFactory

HEADER = ["Full name", "Company", "Mobile", "E-mail", "Tags", "SMS ok", "City"]
MAPPING = ImportMapping.from_dict(
    {
        "name": "Full name",
        "company": "Company",
        "phones": "Mobile",
        "emails": "E-mail",
        "tags": "Tags",
        "consents": {"sms:marketing": "SMS ok"},
        "extra": {"city": "City"},
        "region": "RU",
    }
)


def write_csv(
    path: Path, rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, delimiter=delimiter)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


async def run(
    sessions: SessionFactory, source: Path, tmp_path: Path, *, dry_run: bool = False, **kw: object
) -> ImportReport:
    return await import_contacts(
        sessions,
        source,
        MAPPING,
        region="US",
        dry_run=dry_run,
        errors_path=tmp_path / "rejected.csv",
        **kw,  # type: ignore[arg-type]
    )


def rejected_rows(path: Path | None) -> dict[str, str]:
    assert path is not None
    with path.open(encoding="utf-8-sig", newline="") as source:
        return {row["row"]: row["error"] for row in csv.DictReader(source)}


async def count(sessions: SessionFactory, model: type[object]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def contact_by_phone(sessions: SessionFactory, e164: str) -> ContactView:
    async with sessions() as session:
        contact_id = await session.scalar(
            select(ContactPoint.contact_id).where(ContactPoint.value == e164)
        )
        assert contact_id is not None, e164
        view = await contact_store.load(session, contact_id)
    assert view is not None
    return view


async def test_csv_rows_become_contacts_with_points_tags_consents_and_extra(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "base.csv",
        [
            [
                "Ivan Petrov",
                "Acme",
                "8 (916) 123-45-67",
                "Ivan@Example.com",
                "vip;expo",
                "да",
                "Moscow",
            ],
            ["Anna", "ACME ", "+7 916 765 43 21, 8 495 123 45 67", "", "", "no", ""],
        ],
    )
    report = await run(sessions, source, tmp_path)
    assert (report.rows, report.created, report.merged, report.rejected) == (2, 2, 0, 0)
    assert report.errors_path is None
    ivan = await contact_by_phone(sessions, "+79161234567")
    assert (ivan.name, ivan.company, ivan.emails) == ("Ivan Petrov", "Acme", ["ivan@example.com"])
    assert ivan.tags == ["expo", "vip"]
    assert [(c.channel, c.purpose, c.granted) for c in ivan.consents] == [
        ("sms", "marketing", True)
    ]
    assert ivan.consents[0].source == "import: base.csv"
    assert ivan.extra == {"city": "Moscow"}
    anna = await contact_by_phone(sessions, "+74951234567")
    assert anna.phones == ["+79167654321", "+74951234567"]
    assert anna.company == "Acme"  # same company, found by its case-insensitive key
    assert await count(sessions, Company) == 1


async def test_dry_run_writes_nothing_and_reports_what_the_real_run_does(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    await create_contact(
        sessions,
        ContactDraft(name="Known", phones=(parse_phone("+79160000001", "RU"),)),
        owner_id=None,
        source="test",
    )
    source = write_csv(
        tmp_path / "base.csv",
        [
            ["New", "", "+79160000002", "", "", "", ""],
            ["Known again", "", "+79160000001", "", "", "", ""],
            ["Bad", "", "12345", "", "", "", ""],
            ["Twin", "", "8 916 000 00 02", "", "", "", ""],
        ],
    )
    dry = await run(sessions, source, tmp_path, dry_run=True)
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Company) == 0
    dry_errors = rejected_rows(dry.errors_path)
    real = await run(sessions, source, tmp_path)
    assert (dry.created, dry.merged, dry.rejected) == (real.created, real.merged, real.rejected)
    assert (real.created, real.merged, real.rejected) == (1, 1, 2)
    assert dry_errors == rejected_rows(real.errors_path)
    assert await count(sessions, Contact) == 2


async def test_errors_file_lists_every_rejected_row_with_its_reason_and_cells(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "base.csv",
        [
            ["Ok", "", "+79161234567", "", "", "", ""],
            ["Short", "", "8 (916) 123", "", "", "", ""],
            ["Nobody", "Acme", "", "", "", "", ""],
            ["Same", "", "89161234567", "", "", "", ""],
            ['=HYPERLINK("http://evil")', "", "+79160000009", "", "", "", ""],
            ["Mail", "", "", "not-an-address", "", "", ""],
            ["Hm", "", "+79160000010", "", "", "maybe", ""],
        ],
    )
    report = await run(sessions, source, tmp_path)
    assert (report.created, report.rejected) == (1, 6)
    errors = rejected_rows(report.errors_path)
    assert sorted(errors) == ["3", "4", "5", "6", "7", "8"]
    assert errors["3"].startswith("column 'Mobile': bad phone: '8 (916) 123'")
    assert errors["4"].startswith("no contact point")
    assert errors["5"] == "duplicate of row 2 (same phone +79161234567)"
    assert "spreadsheet formula" in errors["6"]
    assert errors["7"].startswith("column 'E-mail': bad e-mail")
    assert "'maybe' is not a consent answer" in errors["8"]
    with report.errors_path.open(encoding="utf-8-sig", newline="") as source_file:  # type: ignore[union-attr]
        rows = list(csv.reader(source_file))
    assert rows[0] == ["row", "error", *HEADER]
    assert rows[1][2:] == ["Short", "", "8 (916) 123", "", "", "", ""]
    # A formula is neutralised for whoever opens the errors file in a spreadsheet program.
    assert rows[4][2] == '\'=HYPERLINK("http://evil")'


async def test_row_with_known_phone_merges_into_that_contact_filling_gaps(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    async with sessions() as session:
        known = await create_contact(
            sessions,
            ContactDraft(
                name="Ivan Petrov",
                phones=(parse_phone("+79161234567", "RU"),),
                tags=("old",),
                consents=(ConsentChoice("sms", "marketing", False),),
                extra={"city": "Kazan"},
            ),
            owner_id=None,
            source="operator",
        )
    source = write_csv(
        tmp_path / "base.csv",
        [["I. Petrov", "Acme", "8 916 123 45 67", "ivan@example.com", "vip", "yes", "Moscow"]],
    )
    report = await run(sessions, source, tmp_path)
    assert (report.created, report.merged, report.rejected) == (0, 1, 0)
    async with sessions() as session:
        card = await contact_store.load(session, known.id)
    assert card is not None
    assert card.name == "Ivan Petrov"  # a name already there is kept
    assert card.company == "Acme"  # an empty company is filled
    assert card.emails == ["ivan@example.com"]
    assert card.tags == ["old", "vip"]
    assert card.extra == {"city": "Kazan"}
    # The spreadsheet's "yes" does not re-opt-in someone who said no.
    assert [(c.granted, c.source) for c in card.consents] == [(False, "operator")]
    assert await count(sessions, Contact) == 1


async def test_spreadsheet_refusal_withdraws_a_granted_consent(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    async with sessions() as session:
        known = await create_contact(
            sessions,
            ContactDraft(
                name="Anna",
                emails=("anna@example.com",),
                consents=(ConsentChoice("sms", "marketing", True),),
            ),
            owner_id=None,
            source="web form",
        )
    source = write_csv(tmp_path / "b.csv", [["", "", "", "ANNA@example.com", "", "нет", ""]])
    assert (await run(sessions, source, tmp_path)).merged == 1
    async with sessions() as session:
        consent = await session.scalar(select(Consent).where(Consent.contact_id == known.id))
    assert consent is not None
    assert (consent.granted, consent.source) == (False, "import: b.csv")
    async with sessions() as session:
        ledger = (await session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))).all()
    # The consent ledger: the form's "yes", then the spreadsheet's "no", each with its source.
    assert [(e.granted, e.source) for e in ledger] == [(True, "web form"), (False, "import: b.csv")]


async def test_row_matching_two_existing_contacts_is_rejected_as_ambiguous(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    ids = []
    for name, phone in (("A", "+79160000001"), ("B", "+79160000002")):
        view = await create_contact(
            sessions,
            ContactDraft(name=name, phones=(parse_phone(phone, "RU"),)),
            owner_id=None,
            source="test",
        )
        ids.append(view.id)
    source = write_csv(
        tmp_path / "base.csv", [["Both", "", "+79160000001; +79160000002", "", "", "", ""]]
    )
    report = await run(sessions, source, tmp_path)
    assert (report.created, report.merged, report.rejected) == (0, 0, 1)
    assert rejected_rows(report.errors_path)["2"] == (
        f"matches 2 existing contacts ({ids[0]}, {ids[1]}): merge them first"
    )


async def test_in_file_duplicates_are_found_across_batches_by_phone_and_email(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "base.csv",
        [
            ["A", "", "+79160000001", "a@example.com", "", "", ""],
            ["B", "", "+79160000002", "", "", "", ""],
            ["C", "", "", "", "", "", ""],
            ["A twin", "", "", "A@EXAMPLE.COM", "", "", ""],
            ["B twin", "", "8 916 000-00-02", "", "", "", ""],
        ],
    )
    report = await run(sessions, source, tmp_path, batch_rows=2)
    errors = rejected_rows(report.errors_path)
    assert errors["5"] == "duplicate of row 2 (same e-mail a@example.com)"
    assert errors["6"] == "duplicate of row 3 (same phone +79160000002)"
    assert (report.created, report.rejected) == (2, 3)


async def test_company_named_across_batches_is_one_company(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    spellings = ["Acme", "ACME ", "acme", "Globex", "Acme", "globex"]
    source = write_csv(
        tmp_path / "companies.csv",
        [[f"P{i}", name, f"+7916000001{i}", "", "", "", ""] for i, name in enumerate(spellings)],
    )
    report = await run(sessions, source, tmp_path, batch_rows=2)
    assert report.created == 6
    async with sessions() as session:
        names = (await session.scalars(select(Company.name).order_by(Company.name))).all()
        linked = await session.scalar(
            select(func.count()).select_from(Contact).where(Contact.company_id.is_not(None))
        )
    assert names == ["Acme", "Globex"]
    assert linked == 6


@pytest.mark.parametrize(
    ("region", "good", "e164", "bad"),
    [
        ("RU", "8 (495) 123-45-67", "+74951234567", "8 (495) 123-45"),
        ("GB", "020 7946 0958", "+442079460958", "020 7946"),
        ("US", "(212) 555-0123", "+12125550123", "555-0123"),
        ("DE", "030 1234567", "+49301234567", "+49 30"),
    ],
)
async def test_semicolon_csv_with_bom_reads_national_numbers_of_the_region(
    sessions: SessionFactory, tmp_path: Path, region: str, good: str, e164: str, bad: str
) -> None:
    source = write_csv(
        tmp_path / "excel.csv",
        [["Jürgen Ünal", "", good, "", "", "", ""], ["Bad", "", bad, "", "", "", ""]],
        delimiter=";",
        encoding="utf-8-sig",
    )
    report = await import_contacts(
        sessions,
        source,
        MAPPING.with_region(region),
        region="US",
        dry_run=False,
        errors_path=tmp_path / "rejected.csv",
    )
    assert (report.created, report.rejected) == (1, 1)
    assert (await contact_by_phone(sessions, e164)).name == "Jürgen Ünal"
    assert rejected_rows(report.errors_path)["3"].startswith("column 'Mobile': bad phone")


async def test_xlsx_written_by_openpyxl_imports_number_and_boolean_cells(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(["Ivan", "Acme", 79161234567, "ivan@example.com", "vip", True, "Moscow"])
    sheet.append([])
    sheet.append(["Olga", None, "+7 916 765-43-21", None, None, False, None])
    sheet.append(["Nobody", "Acme", None, None, None, None, None])
    path = tmp_path / "base.xlsx"
    book.save(path)
    progress: list[ImportProgress] = []

    async def record(step: ImportProgress) -> None:
        progress.append(step)

    report = await run(sessions, path, tmp_path, progress=record)
    assert (report.rows, report.blank, report.created, report.rejected) == (4, 1, 2, 1)
    assert rejected_rows(report.errors_path)["5"].startswith("no contact point")
    ivan = await contact_by_phone(sessions, "+79161234567")
    assert [c.granted for c in ivan.consents] == [True]
    olga = await contact_by_phone(sessions, "+79167654321")
    assert [c.granted for c in olga.consents] == [False]
    assert progress[-1].fraction == 1.0
    assert progress[-1].rows == 4


async def test_rows_parsed_in_worker_processes_give_the_same_result(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    rows = [[f"P{i}", "", f"+7916{i:07d}", "", "", "", ""] for i in range(50)]
    rows.append(["Dup", "", "+79160000007", "", "", "", ""])
    source = write_csv(tmp_path / "base.csv", rows)
    report = await run(sessions, source, tmp_path, workers=2, batch_rows=7)
    assert (report.created, report.rejected) == (50, 1)
    assert rejected_rows(report.errors_path)["52"] == "duplicate of row 9 (same phone +79160000007)"


async def test_unreadable_file_and_mismatched_mapping_fail_before_writing(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    fake = tmp_path / "base.xlsx"
    fake.write_text("not a workbook")
    with pytest.raises(SheetError, match="not a valid .xlsx"):
        await run(sessions, fake, tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("Name,Phone\nIvan,+79161234567\n")
    with pytest.raises(
        MappingError,
        match="columns 'Full name', 'Company', 'Mobile', .* are not in the file's header",
    ):
        await run(sessions, other, tmp_path)
    assert await count(sessions, Contact) == 0


async def test_import_job_records_progress_report_and_failures(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "upload.csv",
        [["Ivan", "", "+79161234567", "", "", "", ""], ["Bad", "", "12", "", "", "", ""]],
    )
    async with sessions() as session:
        good = Import(filename="base.csv", stored_path=str(source), mapping=MAPPING.to_dict())
        broken = Import(filename="x.csv", stored_path=str(source), mapping={"phones": "Fax"})
        session.add_all([good, broken])
        await session.commit()
    ctx = {"sessions": sessions, "settings": Settings(data_dir=tmp_path / "data")}
    await run_import(ctx, good.id)
    await run_import(ctx, broken.id)
    async with sessions() as session:
        done = await session.get(Import, good.id)
        failed = await session.get(Import, broken.id)
        imported = await session.scalar(select(Contact.import_id))
    assert done is not None and failed is not None
    assert (done.status, done.created, done.rejected, done.rows_done, done.progress) == (
        "done",
        1,
        1,
        2,
        1.0,
    )
    assert done.errors_path and Path(done.errors_path).exists()
    assert done.finished_at is not None
    assert imported == good.id
    assert failed.status == "failed"
    assert failed.error is not None and "column 'Fax' is not in the file's header" in failed.error


def test_cli_imports_reports_and_exits_nonzero_only_on_bad_input(tmp_path: Path) -> None:
    env = {"COMMHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    source = write_csv(
        tmp_path / "base.csv",
        [["Ivan", "", "8 916 123 45 67", "", "", "", ""], ["Bad", "", "12", "", "", "", ""]],
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"name": "Full name", "phones": ["Mobile"]}')
    errors = tmp_path / "rejected.csv"
    args = ["import", str(source), "--mapping", str(mapping), "--errors", str(errors)]

    dry = runner.invoke(main, [*args, "--dry-run", "--region", "RU"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "dry run, nothing written: 2 rows" in dry.output
    assert "1 created, 0 merged, 1 rejected" in dry.output

    done = runner.invoke(main, [*args, "--region", "RU"], env=env)
    assert done.exit_code == 0, done.output
    assert "1 created, 0 merged, 1 rejected" in done.output
    assert f"rejected rows and reasons: {errors}" in done.output
    assert "12" in errors.read_text(encoding="utf-8-sig")

    mapping.write_text('{"phone": "Mobile"}')
    bad = runner.invoke(main, args, env=env)
    assert bad.exit_code == 1
    assert "unknown card field 'phone'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1

    missing = runner.invoke(main, ["import", str(tmp_path / "nope.csv"), "--mapping", str(mapping)])
    assert missing.exit_code == 1


def test_cli_cancels_resumes_and_restarts_imports_by_id(tmp_path: Path) -> None:
    env = {"COMMHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    source = write_csv(
        tmp_path / "base.csv", [[f"P{i}", "", f"+7916{i:07d}", "", "", "", ""] for i in range(30)]
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"name": "Full name", "phones": ["Mobile"]}')
    done = runner.invoke(main, ["import", str(source), "--mapping", str(mapping)], env=env)
    assert done.exit_code == 0, done.output
    assert "import 1, 30 rows" in done.output and "30 created" in done.output

    listed = runner.invoke(main, ["imports", "list"], env=env)
    assert listed.output.startswith("1\tdone\t30 rows: 30 created"), listed.output
    ended = runner.invoke(main, ["imports", "cancel", "1"], env=env)
    assert ended.exit_code == 1 and "import 1 is done: nothing to cancel" in ended.output
    not_stopped = runner.invoke(main, ["imports", "resume", "1"], env=env)
    assert not_stopped.exit_code == 1 and "only interrupted or cancelled" in not_stopped.output

    again = runner.invoke(main, ["imports", "restart", "1"], env=env)
    assert again.exit_code == 0, again.output
    assert "0 created, 30 merged, 0 rejected" in again.output
    assert runner.invoke(main, ["imports", "cancel", "7"], env=env).exit_code == 1
