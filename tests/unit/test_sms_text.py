"""SMS encoding, segment counts and cutting, as a gateway and a handset see them."""

from __future__ import annotations

import pytest

from commhub.domain.sms_text import (
    MAX_SEGMENTS,
    SmsEncoding,
    SmsShape,
    SmsTextError,
    concatenation_udh,
    encode_part,
    measure,
    split,
)

EXTENSION_CHARS = "€[]{}\\^~|\f"
EMOJI = "\U0001f600"


def test_plain_text_of_160_characters_is_one_gsm7_segment() -> None:
    assert measure("a" * 160) == SmsShape(
        encoding=SmsEncoding.GSM7,
        characters=160,
        units=160,
        segments=1,
        per_segment=160,
        remaining=0,
    )
    assert split("a" * 160) == ["a" * 160]


def test_plain_text_of_161_characters_is_two_segments_of_153_and_8() -> None:
    shape = measure("a" * 161)

    assert (shape.segments, shape.per_segment, shape.remaining) == (2, 153, 145)
    assert [len(part) for part in split("a" * 161)] == [153, 8]


@pytest.mark.parametrize("char", list(EXTENSION_CHARS))
def test_extension_character_costs_two_septets(char: str) -> None:
    shape = measure(f"a{char}b")

    assert shape.encoding is SmsEncoding.GSM7
    assert (shape.characters, shape.units) == (3, 4)


def test_eighty_euro_signs_fill_one_segment_and_one_more_needs_two() -> None:
    assert measure("€" * 80).segments == 1
    assert measure("€" * 81).segments == 2


def test_escape_pair_straddling_the_153rd_septet_moves_whole_to_the_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10

    parts = split(text)

    assert parts == ["a" * 152, "€" + "b" * 10]
    assert [len(encode_part(part, SmsEncoding.GSM7)) for part in parts] == [152, 12]
    shape = measure(text)
    assert (shape.units, shape.segments, shape.remaining) == (164, 2, 141)


def test_escape_pair_ending_exactly_at_153_stays_in_the_first_part() -> None:
    parts = split("a" * 151 + "€" + "b" * 10)

    assert parts == ["a" * 151 + "€", "b" * 10]


def test_cyrillic_of_70_characters_is_one_ucs2_segment() -> None:
    shape = measure("ж" * 70)

    assert shape == SmsShape(
        encoding=SmsEncoding.UCS2,
        characters=70,
        units=70,
        segments=1,
        per_segment=70,
        remaining=0,
    )


def test_cyrillic_of_71_characters_is_two_segments_of_67_and_4() -> None:
    shape = measure("ж" * 71)

    assert (shape.segments, shape.per_segment, shape.remaining) == (2, 67, 63)
    assert [len(part) for part in split("ж" * 71)] == [67, 4]


@pytest.mark.parametrize("char", ["ё", "ç", EMOJI, "\x1b", "«"])
def test_one_character_outside_gsm_switches_the_whole_message_to_ucs2(char: str) -> None:
    shape = measure("Hello " + char)

    assert shape.encoding is SmsEncoding.UCS2
    assert shape.per_segment == 70


@pytest.mark.parametrize("char", ["Ç", "é", "ß", "Ø", "Δ", "@", "£", "¥", "\n"])
def test_characters_of_the_default_alphabet_stay_gsm7(char: str) -> None:
    shape = measure("Hello " + char)

    assert shape.encoding is SmsEncoding.GSM7
    assert shape.units == 7


def test_emoji_counts_two_utf16_units_and_one_character() -> None:
    shape = measure("Hi " + EMOJI)

    assert (shape.characters, shape.units, shape.remaining) == (4, 5, 65)


def test_emoji_straddling_the_67th_unit_moves_whole_to_the_next_part() -> None:
    text = "ж" * 66 + EMOJI + "ж" * 5

    parts = split(text)

    assert parts == ["ж" * 66, EMOJI + "ж" * 5]
    assert [len(encode_part(part, SmsEncoding.UCS2)) for part in parts] == [132, 14]


def test_thirty_five_emoji_fill_one_segment() -> None:
    assert measure(EMOJI * 35).segments == 1
    assert measure(EMOJI * 36).segments == 2
    assert split(EMOJI * 36) == [EMOJI * 33, EMOJI * 3]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 500,
        "€" * 300,
        "Привет, мир! " * 40,
        (EMOJI + "ж") * 100,
        ("x" * 152 + "{") * 7,
        "mixed € and [brackets] " * 20,
    ],
)
def test_parts_join_back_to_the_text_and_each_fits_its_segment(text: str) -> None:
    parts = split(text)
    shape = measure(text)

    assert "".join(parts) == text
    assert len(parts) == shape.segments
    for part in parts:
        units = len(encode_part(part, shape.encoding))
        if shape.encoding is SmsEncoding.UCS2:
            units //= 2
        assert units <= shape.per_segment


def test_empty_text_is_one_empty_segment() -> None:
    assert measure("") == SmsShape(
        encoding=SmsEncoding.GSM7,
        characters=0,
        units=0,
        segments=1,
        per_segment=160,
        remaining=160,
    )
    assert split("") == [""]


def test_long_text_is_measured_beyond_the_segment_limit() -> None:
    assert measure("a" * 153 * (MAX_SEGMENTS + 2)).segments == MAX_SEGMENTS + 2


def test_gsm7_part_is_one_septet_per_octet_with_escape_before_extension() -> None:
    assert encode_part("€", SmsEncoding.GSM7) == bytes.fromhex("1b65")
    assert encode_part("@a[", SmsEncoding.GSM7) == bytes.fromhex("00 61 1b3c")


def test_ucs2_part_is_utf16_big_endian_with_surrogate_pairs() -> None:
    assert encode_part("Привет", SmsEncoding.UCS2) == bytes.fromhex("041f 0440 0438 0432 0435 0442")
    assert encode_part(EMOJI, SmsEncoding.UCS2) == bytes.fromhex("d83d de00")


def test_text_outside_gsm_cannot_be_encoded_as_gsm7() -> None:
    with pytest.raises(SmsTextError, match=r"character 3 \('ё'\)"):
        encode_part("abё", SmsEncoding.GSM7)


def test_lone_surrogate_is_refused_with_its_position() -> None:
    text = "ok \ud83d"

    with pytest.raises(SmsTextError, match="U\\+D83D at character 4"):
        measure(text)
    with pytest.raises(SmsTextError):
        split(text)
    with pytest.raises(SmsTextError):
        encode_part(text, SmsEncoding.UCS2)


def test_concatenation_header_carries_reference_total_and_sequence() -> None:
    assert concatenation_udh(reference=0xA7, total=3, sequence=2) == bytes.fromhex(
        "05 00 03 a7 03 02"
    )
    assert concatenation_udh(reference=0, total=255, sequence=255)[3:] == b"\x00\xff\xff"


@pytest.mark.parametrize(
    ("reference", "total", "sequence", "named"),
    [
        (256, 2, 1, "reference 256"),
        (-1, 2, 1, "reference -1"),
        (1, 0, 1, "total 0"),
        (1, 256, 1, "total 256"),
        (1, 3, 0, "sequence 0"),
        (1, 3, 4, "sequence 4 is outside 1..3"),
    ],
)
def test_concatenation_header_refuses_values_the_handset_would_ignore(
    reference: int, total: int, sequence: int, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        concatenation_udh(reference=reference, total=total, sequence=sequence)
