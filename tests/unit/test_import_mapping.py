"""The import mapping and what one spreadsheet row becomes (pure: no file, no database)."""

from __future__ import annotations

import pickle

import pytest

from commhub.domain.contacts import ConsentChoice, ContactDraft
from commhub.domain.imports import (
    ImportMapping,
    MappingError,
    PackedDraft,
    Rejection,
    read_rows,
)

HEADER = ["Full name", "Company", "Mobile", "Work", "E-mail", "Tags", "SMS ok", "City"]
MAPPING = {
    "name": "Full name",
    "company": "Company",
    "phones": ["Mobile", "Work"],
    "emails": ["E-mail"],
    "tags": {"column": "Tags", "separator": ";", "add": ["Expo 2024"]},
    "consents": {"sms:marketing": "SMS ok"},
    "extra": {"city": "City"},
    "region": "RU",
}


def read(row: dict[str, str], mapping: dict[str, object] | None = None) -> ContactDraft:
    found = _outcome(row, mapping)
    assert isinstance(found, ContactDraft), found
    return found


def reason(row: dict[str, str], mapping: dict[str, object] | None = None) -> str:
    found = _outcome(row, mapping)
    assert isinstance(found, Rejection), found
    return found.reason


def _outcome(row: dict[str, str], mapping: dict[str, object] | None) -> ContactDraft | Rejection:
    reader = ImportMapping.from_dict(mapping or MAPPING).bind(HEADER, region="US")
    return reader.read([row.get(column, "") for column in HEADER])


def test_full_row_becomes_a_draft_with_every_field() -> None:
    draft = read(
        {
            "Full name": "  Ivan   Petrov ",
            "Company": "Acme",
            "Mobile": "8 (916) 123-45-67",
            "Work": "+44 20 7946 0958",
            "E-mail": "Ivan@Example.COM",
            "Tags": "VIP; cold ;",
            "SMS ok": "Да",
            "City": "Moscow",
        }
    )
    assert draft.name == "Ivan Petrov"
    assert draft.company == "Acme"
    assert [p.e164 for p in draft.phones] == ["+79161234567", "+442079460958"]
    assert draft.emails == ("ivan@example.com",)
    assert draft.tags == ("expo 2024", "vip", "cold")
    assert draft.consents == (ConsentChoice("sms", "marketing", True),)
    assert draft.extra == {"city": "Moscow"}


def test_name_from_several_columns_is_joined() -> None:
    mapping = {**MAPPING, "name": ["Full name", "Company"]}
    assert read(
        {"Full name": "Ivan", "Company": "Petrov", "Mobile": "+79161234567"}, mapping
    ).name == ("Ivan Petrov")


def test_one_cell_may_hold_several_phones_and_emails() -> None:
    draft = read(
        {"Mobile": "+7 916 123-45-67, 8 916 765 43 21; +79161234567", "E-mail": "a@x.org; b@x.org"}
    )
    assert [p.e164 for p in draft.phones] == ["+79161234567", "+79167654321"]
    assert draft.emails == ("a@x.org", "b@x.org")


@pytest.mark.parametrize(
    ("region", "written", "e164"),
    [
        ("RU", "8 (916) 123-45-67", "+79161234567"),
        ("GB", "020 7946 0958", "+442079460958"),
        ("US", "(212) 555-0123", "+12125550123"),
        ("DE", "030 1234567", "+49301234567"),
    ],
)
def test_national_formats_read_in_the_mapping_region(region: str, written: str, e164: str) -> None:
    assert [p.e164 for p in read({"Mobile": written}, {**MAPPING, "region": region}).phones] == [
        e164
    ]


@pytest.mark.parametrize(
    ("region", "written"),
    [("RU", "8 (916) 123"), ("GB", "020 7946"), ("US", "555-0123"), ("DE", "0049 30")],
)
def test_bad_phone_rejects_the_row_naming_column_and_value(region: str, written: str) -> None:
    why = reason({"Mobile": written, "E-mail": "ok@example.com"}, {**MAPPING, "region": region})
    assert why.startswith("column 'Mobile': bad phone:")
    assert written in why


def test_bad_email_rejects_the_row() -> None:
    why = reason({"Mobile": "+79161234567", "E-mail": "ivan@@example"})
    assert why.startswith("column 'E-mail': bad e-mail:")


def test_row_without_phone_or_email_is_rejected_as_no_contact_point() -> None:
    assert reason({"Full name": "Nobody"}).startswith("no contact point")


@pytest.mark.parametrize(("answer", "granted"), [("yes", True), ("0", False), ("НЕТ", False)])
def test_consent_answers_in_both_languages(answer: str, granted: bool) -> None:
    draft = read({"Mobile": "+79161234567", "SMS ok": answer})
    assert draft.consents == (ConsentChoice("sms", "marketing", granted),)


def test_empty_consent_cell_records_nothing_and_odd_answer_rejects() -> None:
    assert read({"Mobile": "+79161234567"}).consents == ()
    assert "'maybe' is not a consent answer" in reason(
        {"Mobile": "+79161234567", "SMS ok": "maybe"}
    )


def test_formula_cells_are_refused_but_excel_text_wrapper_is_read() -> None:
    assert "spreadsheet formula" in reason(
        {"Full name": '=HYPERLINK("x")', "Mobile": "+79161234567"}
    )
    assert [p.e164 for p in read({"Mobile": '="+79161234567"'}).phones] == ["+79161234567"]


def test_rows_travel_to_worker_processes_as_plain_tuples() -> None:
    reader = ImportMapping.from_dict(MAPPING).bind(HEADER, region="US")
    rows = [["Ivan", "", "+79161234567", "", "", "vip", "yes", ""], ["", "", "", "", "", ""], ["x"]]
    packed = pickle.loads(pickle.dumps(read_rows(pickle.loads(pickle.dumps(reader)), rows)))
    draft, blank, rejected = packed
    assert blank is None
    assert isinstance(rejected, str) and rejected.startswith("no contact point")
    assert not isinstance(draft, str) and draft is not None
    found = reader.read(rows[0])
    assert isinstance(found, ContactDraft)
    assert draft == PackedDraft.of(found)
    assert draft.points == ["+79161234567"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"phone": "Mobile"}, "unknown card field 'phone'"),
        ({"name": "Full name"}, "map at least one 'phones' or 'emails' column"),
        ({"phones": []}, "must be a column name or a list"),
        ({"phones": "Mobile", "consents": {"fax:marketing": "SMS ok"}}, "channel must be one of"),
        ({"phones": "Mobile", "region": "XX"}, "unknown phone region 'XX'"),
        ({"phones": "Mobile", "tags": {"colum": "Tags"}}, "unknown key 'colum'"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_mapping_is_refused_with_the_key_at_fault(mapping: object, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        ImportMapping.from_dict(mapping)


def test_mapping_column_missing_from_header_names_it_and_the_header() -> None:
    mapping = ImportMapping.from_dict({"phones": ["Mobile", "Fax"]})
    with pytest.raises(
        MappingError, match=r"column 'Fax' is not in the file's header \('Full name'"
    ):
        mapping.bind(HEADER, region="RU")


def test_header_matches_case_insensitively_unless_repeated() -> None:
    reader = ImportMapping.from_dict({"phones": "mobile"}).bind(["MOBILE"], region="RU")
    assert isinstance(reader.read(["+79161234567"]), ContactDraft)
    with pytest.raises(MappingError, match="more than once"):
        ImportMapping.from_dict({"phones": "Mobile"}).bind(["Mobile", "Mobile"], region="RU")


def test_mapping_json_round_trips_and_bad_json_names_the_line() -> None:
    mapping = ImportMapping.from_dict(MAPPING)
    assert ImportMapping.from_dict(mapping.to_dict()) == mapping
    with pytest.raises(MappingError, match="line 1"):
        ImportMapping.from_json("{phones: Mobile}")


def test_command_line_region_overrides_the_mapping() -> None:
    mapping = ImportMapping.from_dict(MAPPING).with_region("gb")
    reader = mapping.bind(HEADER, region="US")
    assert reader.region == "GB"
