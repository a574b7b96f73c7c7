"""Redaction of personal data (concierge.safety.pii): what is masked in each language and
format, what a help-desk text is full of and must keep, `keep`, the checksums, and redacting
twice."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concierge.safety.pii import Redaction, redact

EMAILS = [
    ("Write to jane.doe@example.com today.", "Write to [email] today."),
    ("Schreiben Sie an Max.Mustermann@beispiel.de.", "Schreiben Sie an [email]."),
    ("Écrivez à josé.garcía@exemple.fr, merci", "Écrivez à [email], merci"),
    ("Escríbenos a soporte+pedidos@tienda.es", "Escríbenos a [email]"),
    ("Scrivi a MARIO_ROSSI@Posta.IT oppure chiama", "Scrivi a [email] oppure chiama"),
    ("<a.b-c@mail.sub.example.co.uk>", "<[email]>"),
]

PHONES = [
    ("Call me on +44 20 7946 0958, thanks", "Call me on [phone], thanks"),
    ("Rufen Sie 0049 30 123456 an", "Rufen Sie [phone] an"),
    ("Mon portable : 06 12 34 56 78.", "Mon portable : [phone]."),
    ("My number is (555) 123-4567.", "My number is [phone]."),
    ("Tel. 030/1234567", "Tel. [phone]"),
    ("Chiamami al +39 02 1234 5678 dopo le 18", "Chiamami al [phone] dopo le 18"),
    ("Erreichbar unter +49 (0)30 1234567.", "Erreichbar unter [phone]."),
    ("Call +1 (555) 123-4567 now", "Call [phone] now"),
    ("Llámame al +34 912 345 678", "Llámame al [phone]"),
    ("Teléfono: 912 345 678", "Teléfono: [phone]"),
    ("ring 555-123-4567", "ring [phone]"),
    ("Toll free 1-800-555-0199.", "Toll free [phone]."),
    ("Handy 0171-1234567", "Handy [phone]"),
    ("appelez le 06.12.34.56.78", "appelez le [phone]"),
    ("Numéro vert 0 800 123 456", "Numéro vert [phone]"),
    ("Tel.: 0301234567", "Tel.: [phone]"),
    ("numero verde 800 123 456", "numero verde [phone]"),
    ("+4930123456", "[phone]"),
    ("004930123456", "[phone]"),
    ("Ich bin unter 0176 12345678 erreichbar", "Ich bin unter [phone] erreichbar"),
    ("Call 030 1234567 for 2 tents", "Call [phone] for 2 tents"),
    ("Hotline 0800 123 4567 24h", "Hotline [phone] 24h"),
]

CARDS = [
    ("card 4111 1111 1111 1111 exp 12/26", "card [card] exp 12/26"),
    ("Karte 4111-1111-1111-1111", "Karte [card]"),
    ("Amex 378282246310005.", "Amex [card]."),
    ("Amex 3782 822463 10005", "Amex [card]"),
    ("carte 5555 5555 5555 4444", "carte [card]"),
    ("tarjeta 2223 0031 2200 3222", "tarjeta [card]"),
    ("Discover 6011111111111117", "Discover [card]"),
    ("Diners 3056 930902 5904", "Diners [card]"),
    ("Visa 19: 4000 0000 0000 0000 006", "Visa 19: [card]"),
    ("pay 4111111111111111 12/26", "pay [card] 12/26"),
]

IBANS = [
    ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [iban]."),
    ("GB82WEST12345698765432", "[iban]"),
    ("virement FR14 2004 1010 0505 0001 3M02 606 svp", "virement [iban] svp"),
    ("lowercase fr14 2004 1010 0505 0001 3m02 606", "lowercase [iban]"),
    ("cuenta ES91 2100 0418 4502 0005 1332", "cuenta [iban]"),
    ("conto IT60 X054 2811 1010 0000 0123 456", "conto [iban]"),
    ("Konto AT61 1904 3002 3457 3201", "Konto [iban]"),
    ("CH9300762011623852957", "[iban]"),
    ("NL91ABNA0417164300, BE68539007547034", "[iban], [iban]"),
]

# What a help-desk answer is full of, in several languages: nothing of it is personal.
NOT_PERSONAL = [
    "The Cirrus 2 costs €1,299.00 (was €1.499,00).",
    "Der Preis beträgt 1.299,00 € inkl. MwSt.",
    "Le prix est de 1 299 € ou 12 345 678 points.",
    "Order placed on 2024-05-01, delivered 01.05.2024 or 1/5/2024 at 10:30.",
    "Bestellt am 01.05.2024 10.00 Uhr, geliefert am 03.05.24.",
    "Your order ORD-2024-00123 ships in 3 days.",
    "Product code AB-1234-567, SKU 100-200-3000, model X5-2024.",
    "A 2-person tent, 30x40 cm, 30 x 40 cm, 2.5 kg, 50% off, 0,5 l.",
    "Postcodes: 10115 Berlin, A-6020 Innsbruck, SW1A 1AA London, 75001 Paris.",
    "Version 3.2.1, firmware 10.0.19045.2965, server 192.168.0.1.",
    "ISBN 978-3-16-148410-0 and EAN 4006381333931.",
    "Sizes 36 38 40 42, years 1999 2000 2001 2002, from 2019 to 2024.",
    "Prices 0.99 1.99 2.99 and 0 10 20 30 40 50.",
    "Bestellnummer 0123456789, Order 0123-4567-89, Art.-Nr. 0123456789.",
    "Customer no 0301234567, tracking 00340434161234567890.",
    "Opening hours Mo-Fr 08.00-18.00 Uhr, Sa 09:30–17:00.",
    "Total weight 1 234 567 g, 06 12 34 56 78 %.",
    "Tracking number 1Z999AA10123456784.",
]

NOT_CHECKSUMMED = [
    "card 4111 1111 1111 1112",  # Luhn fails
    "card 5555 5555 5555 4445",
    "IBAN DE89 3704 0044 0532 0130 01",  # mod-97 fails
    "GB82WEST12345698765433",
    "ZZ89 3704 0044 0532 0130 00",  # no such country
    "DE89 3704 0044 0532 0130 0",  # a digit short
]


@pytest.mark.parametrize(("text", "expected"), EMAILS + PHONES + CARDS + IBANS)
def test_personal_data_is_masked_by_kind(text: str, expected: str) -> None:
    # Given a text in one of several languages and formats with personal data in it

    # When it is redacted
    redaction = redact(text)

    # Then each value is replaced by its kind's placeholder, and only those
    assert redaction.text == expected


@pytest.mark.parametrize(
    ("examples", "kind"), [(EMAILS, "email"), (PHONES, "phone"), (CARDS, "card"), (IBANS, "iban")]
)
def test_the_kinds_masked_are_named(examples: list[tuple[str, str]], kind: str) -> None:
    # Given texts holding values of one kind

    # When they are redacted
    kinds = {redact(text).kinds for text, _ in examples}

    # Then each names that kind, and that kind only
    assert kinds == {(kind,)}


def test_kinds_are_sorted_and_named_once() -> None:
    # Given a text with two e-mails, two phones, a card and an IBAN
    text = (
        "Mail a@example.com or b@example.org, call +44 20 7946 0958 or 030/1234567, "
        "card 4111 1111 1111 1111, IBAN DE89370400440532013000"
    )

    # When it is redacted
    redaction = redact(text)

    # Then every kind is named once, in order
    assert redaction == Redaction(
        "Mail [email] or [email], call [phone] or [phone], card [card], IBAN [iban]",
        ("card", "email", "iban", "phone"),
    )


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_prices_dates_codes_and_measures_are_left_alone(text: str) -> None:
    # Given a help-desk text of prices, dates, times, codes, sizes, postcodes and versions

    # When it is redacted
    redaction = redact(text)

    # Then nothing is masked
    assert redaction == Redaction(text, ())


@pytest.mark.parametrize("text", NOT_CHECKSUMMED)
def test_numbers_failing_their_checksum_are_not_masked(text: str) -> None:
    # Given a card number failing the Luhn check, or an IBAN failing mod-97 or its length

    # When it is redacted
    redaction = redact(text)

    # Then it stays as it was
    assert redaction == Redaction(text, ())


@pytest.mark.parametrize(
    ("text", "keep", "expected"),
    [
        (
            "Write to SERVICE@Alpenglow.example or me@example.com",
            ["service@alpenglow.example"],
            "Write to SERVICE@Alpenglow.example or [email]",
        ),
        (
            "Call 0512 555 0101 or +43 512 555 0102",
            ["+43 (0)512 555 0101"],
            "Call 0512 555 0101 or [phone]",
        ),
        (
            "Ruf an: +43 512 555 0101 oder 0043 512 555 0101",
            ["0512/555 01 01"],
            "Ruf an: +43 512 555 0101 oder 0043 512 555 0101",
        ),
        (
            "Pay to DE89370400440532013000, refunds from GB82 WEST 1234 5698 7654 32",
            ["de89 3704 0044 0532 0130 00"],
            "Pay to DE89370400440532013000, refunds from [iban]",
        ),
        (
            "Test card 4111-1111-1111-1111, mine 5555 5555 5555 4444",
            ["4111111111111111"],
            "Test card 4111-1111-1111-1111, mine [card]",
        ),
    ],
)
def test_kept_values_stay_however_they_are_written(
    text: str, keep: list[str], expected: str
) -> None:
    # Given the organisation's own address, line, account or test card, written another way

    # When a text quoting it is redacted with it kept
    redaction = redact(text, keep=keep)

    # Then it stays, and the rest is masked
    assert redaction.text == expected


def test_values_published_by_the_passages_stay() -> None:
    # Given passages that publish a support address and a shop's phone number
    passages = [
        "Write to service@alpenglow-outdoor.example; we reply within a day.",
        "Telefon des Geschäfts: +43 512 555 0101",
    ]
    answer = (
        "Write to service@alpenglow-outdoor.example or call 0512 555 0101. "
        "You said your number is 0176 1234567 and your e-mail anna@example.com."
    )

    # When an answer written from them is redacted, keeping what they publish
    redaction = redact(answer, keep_from=passages)

    # Then the published values stay, the user's are masked
    assert redaction.text == (
        "Write to service@alpenglow-outdoor.example or call 0512 555 0101. "
        "You said your number is [phone] and your e-mail [email]."
    )


@pytest.mark.parametrize(
    "text", [text for text, _ in EMAILS + PHONES + CARDS + IBANS] + NOT_PERSONAL
)
def test_redacting_twice_gives_what_redacting_once_gave(text: str) -> None:
    # Given a text redacted once
    once = redact(text)

    # When it is redacted again
    twice = redact(once.text)

    # Then nothing more is masked
    assert twice.text == once.text


# -- properties --------------------------------------------------------------------------------
_PIECES = [
    *(text for text, _ in EMAILS + PHONES + CARDS + IBANS),
    *NOT_PERSONAL,
    *NOT_CHECKSUMMED,
    "Tel",
    "order",
    "€",
    "%",
    "+",
    "(",
    ")",
    "-",
    "/",
    ".",
    ",",
    "@",
    "0",
    "00",
    "[phone]",
    "\n",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(_PIECES), st.text(alphabet="0123456789 +-./()@aZ", max_size=12)),
        max_size=12,
    ).map(" ".join)
)
def test_redaction_is_idempotent_on_any_mix(text: str) -> None:
    # Given any mix of personal data, help-desk text, separators and digits
    once = redact(text)

    # When the redacted text is redacted again
    twice = redact(once.text)

    # Then it is unchanged
    assert twice.text == once.text


def _with_luhn_digit(body: str) -> str:
    total = 0
    for position, character in enumerate(reversed(body + "0")):
        value = int(character)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return body + str((10 - total % 10) % 10)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=14, max_size=14).map(
        lambda d: _with_luhn_digit("4" + d)
    ),
    st.sampled_from(["", " ", "-"]),
    st.sampled_from(["Meine Karte", "my card is", "carte :", "tarjeta", "la carta"]),
)
def test_any_valid_card_number_is_masked(number: str, separator: str, words: str) -> None:
    # Given a valid 16-digit card number, printed in fours or not, after some words
    printed = separator.join(number[i : i + 4] for i in range(0, 16, 4))
    text = f"{words} {printed}."

    # When the text is redacted
    redaction = redact(text)

    # Then the number is masked as a card
    assert redaction == Redaction(f"{words} [card].", ("card",))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=999_999),
    st.integers(min_value=0, max_value=99),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)),
    st.times(),
)
def test_prices_dates_and_times_are_never_masked(
    units: int, cents: int, day: date, moment: time
) -> None:
    # Given prices, dates and times written the ways help-desk texts write them
    english = f"€{units:,}.{cents:02d}"
    german = f"{units:,}".replace(",", ".") + f",{cents:02d} €"
    french = f"{units:,}".replace(",", " ") + f",{cents:02d} EUR"
    text = (
        f"{english}, {german}, {french}, on {day:%Y-%m-%d}, {day:%d.%m.%Y}, {day:%d/%m/%Y} "
        f"at {moment:%H:%M}"
    )

    # When they are redacted
    redaction = redact(text)

    # Then nothing is masked
    assert redaction == Redaction(text, ())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Nd"], exclude_characters="@")))
def test_text_without_digits_or_at_signs_is_unchanged(text: str) -> None:
    # Given a text without a digit or an "@"

    # When it is redacted
    redaction = redact(text)

    # Then it is returned as it was
    assert redaction == Redaction(text, ())
