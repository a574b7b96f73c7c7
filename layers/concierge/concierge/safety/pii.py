"""Redaction of personal data in what the chain keeps: e-mail addresses, phone numbers, payment
card numbers and IBANs become `[email]`, `[phone]`, `[card]` and `[iban]`.

    redact("Call me on +44 20 7946 0958") == Redaction("Call me on [phone]", ("phone",))

What counts as each kind:
- e-mail: local@domain.tld (Unicode letters allowed, a TLD of letters);
- IBAN: a country code, two check digits and the country's BBAN length (printed in groups of
  four or not), and it must pass the ISO 13616 mod-97 check;
- card: 13 to 19 digits, contiguous or grouped as cards are printed (4-4-4-4[-3], 4-6-5,
  4-6-4), a first digit of a card network (2-6), and it must pass the Luhn check;
- phone: 7 to 15 digits in a phone's shape — after `+` or `00`; a parenthesised area code;
  a trunk `0` with the groups phones are written in (06 12 34 56 78, 030/1234567,
  0171-1234567); a North American 555-123-4567; or any grouping right after a word for phone
  (Tel., Telefon, téléphone, teléfono, telefono, call, Handy, móvil, …). Dates, times, prices,
  percentages, sizes, versions, postcodes and codes glued to letters (ORD-2024-00123) are left
  alone, and so is a number after a word for an order, invoice, customer or article number.
  It prefers missing an odd phone number to masking a price.

`keep` names values that stay (the organisation's own address, line or account), compared as
the kind reads them: e-mails case-insensitively, phones by their digits (+43 512 123456 and
0512 123456 are one number), cards and IBANs without spaces. `keep_from` gives texts whose own
values stay: the passages an answer quotes its support address or shop's number from.

Pure standard library: a 2 KB answer is redacted in 0.15-0.3 ms, a 2 KB text dense with
personal data in under 1 ms (this machine). Redacting twice gives what redacting once gave.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final, Literal

Kind = Literal["card", "email", "iban", "phone"]
PLACEHOLDERS: Final[dict[Kind, str]] = {
    "card": "[card]",
    "email": "[email]",
    "iban": "[iban]",
    "phone": "[phone]",
}


@dataclass(frozen=True, slots=True)
class Redaction:
    """The text with personal data masked, and which kinds were masked (sorted, once each)."""

    text: str
    kinds: tuple[Kind, ...] = ()


def redact(text: str, keep: Collection[str] = (), keep_from: Iterable[str] = ()) -> Redaction:
    """`text` with every e-mail address, IBAN, card number and phone number masked, except the
    values of `keep` and those found in the texts of `keep_from` (the passages an answer was
    written from: what the knowledge base publishes is not the user's)."""
    kept = _Kept.of([*keep, *(value for source in keep_from for value in _found(source))])
    text, masked = _masked(text, kept)
    return Redaction(text, tuple(sorted({kind for kind, _ in masked})))


def _masked(text: str, kept: _Kept | None) -> tuple[str, list[tuple[Kind, str]]]:
    """`text` with every value not kept masked, and the values masked. Passes repeat until one
    masks nothing (a value read inside a longer run of digits the first time stands alone the
    next), so what comes out is redacted already: redacting it again changes nothing. Each pass
    that masks removes digits or an "@", so there are few."""
    masked: list[tuple[Kind, str]] = []
    while True:
        before = len(masked)
        for kind, spans in _DETECTORS:
            text, values = _mask(text, kind, spans, kept)
            masked += [(kind, value) for value in values]
        if len(masked) == before:
            return text, masked


Spans = Callable[[str], Iterator[tuple[int, int]]]


def _mask(text: str, kind: Kind, spans: Spans, kept: _Kept | None) -> tuple[str, list[str]]:
    """`text` with the values `spans` finds masked, unless kept; and the values masked."""
    parts: list[str] = []
    masked: list[str] = []
    position = 0
    for start, end in spans(text):
        value = text[start:end]
        if kept is not None and kept.keeps(kind, value):
            continue
        parts += [text[position:start], PLACEHOLDERS[kind]]
        masked.append(value)
        position = end
    if not masked:
        return text, masked
    parts.append(text[position:])
    return "".join(parts), masked


@lru_cache(maxsize=1024)
def _found(text: str) -> tuple[str, ...]:
    """Every value of every kind in `text`, read as `redact` reads them. Remembered: the same
    passages come back request after request."""
    return tuple(value for _, value in _masked(text, None)[1])


# -- e-mail ------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        yield match.span()


# -- IBAN --------------------------------------------------------------------------------------
# Total length by country (the IBAN registry); a country missing here is not detected.
_IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
# A country code and check digits, not glued to a word; then the BBAN of that country's length.
_IBAN_START = re.compile(r"(?<![^\W_])([A-Za-z]{2})(\d{2})")


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(match[1].upper())
        if length is None:
            continue
        bban = _bban(length - 4).match(text, match.end())
        if bban is not None and _mod97(_compact(text[match.start() : bban.end()])):
            yield match.start(), bban.end()


@cache
def _bban(length: int) -> re.Pattern[str]:
    """A BBAN of `length` characters (one space allowed before each), ending there."""
    return re.compile(f"(?:[ \u00a0]?[A-Za-z0-9]){{{length}}}(?![^\\W_])")


def _mod97(iban: str) -> bool:
    rotated = iban[4:] + iban[:4]
    remainder = 0
    for character in rotated:
        remainder = (remainder * (100 if character.isalpha() else 10) + int(character, 36)) % 97
    return remainder == 1


def _compact(value: str) -> str:
    return "".join(character for character in value if character.isalnum()).upper()


# -- payment cards -----------------------------------------------------------------------------
# Runs of digit groups separated by one space or dash; card-sized ranges are chosen in code.
_DIGIT_RUN = re.compile(r"(?<![\w+])(?<!\d[.,/-])\d+(?:[ \u00a0-]\d+)*(?![\w.,/-]?\d)(?![^\W\d_])")
_CARD_GROUPS = re.compile(r"4(?:-4)*(?:-[1-4])?|4-6-[45]")
_IBAN_HEAD = re.compile(r"[A-Za-z]{2}\d{2}[ \u00a0]?$")


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for run in _DIGIT_RUN.finditer(text):
        if len(run[0]) < 13 or sum(character.isdigit() for character in run[0]) < 13:
            continue
        if _IBAN_HEAD.search(text, max(run.start() - 5, 0), run.start()):
            continue  # the tail of an IBAN that failed its check: not a card either
        offset = run.start()
        groups = [(offset + m.start(), offset + m.end()) for m in re.finditer(r"\d+", run[0])]
        yield from _card_ranges(text, groups)


def _card_ranges(text: str, groups: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Leftmost-longest ranges of whole groups that read as a card number."""
    numbers = [text[start:end] for start, end in groups]
    before = [0]  # digits before each group
    for number in numbers:
        before.append(before[-1] + len(number))
    first = 0
    while first < len(groups):
        # A card is printed in at most five groups (4-4-4-4-3).
        for last in range(min(first + 4, len(groups) - 1), first - 1, -1):
            if not 13 <= before[last + 1] - before[first] <= 19:
                continue
            chosen = numbers[first : last + 1]
            digits = "".join(chosen)
            if digits[0] not in "23456":
                continue
            sizes = "-".join(str(len(number)) for number in chosen)
            if (first != last and not _CARD_GROUPS.fullmatch(sizes)) or not _luhn(digits):
                continue
            yield groups[first][0], groups[last][1]
            first = last
            break
        first += 1


def _luhn(digits: str) -> bool:
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = int(character)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# -- phones ------------------------------------------------------------------------------------
# A run of digits with the separators phones are written with: one space, dot, slash or dash
# between groups, parentheses around an area code or a trunk "(0)", a leading "+".
_PHONE = re.compile(r"(?<![\w+#/-])(?:\+|\(\+?)?\d(?:\)?[ \u00a0./-]?\(?\d)*")
# Words that say what the number after them is. A word starts after a non-letter, but not
# after "[": a placeholder ("[phone]") is not a word, or redacting twice would mask more.
_WORD = r"(?<![^\W\d_])(?<!\[)"
_NUMBER_WORDS = re.compile(
    _WORD
    + r"(?:(?P<phone>tel(?!l)|tél|phone|call|dial|ring|mobil|móvil|movil|cell|fax|whats\s?app|"
    r"hotline|handy|anruf|rufen|rufnummer|durchwahl|wähl|portable|appel|joindre|llam|llám|"
    r"marque|tlf|tfno|celular|chiam|numero verde|sms)|"
    r"order|bestell|auftrag|commande|pedido|ordine|invoice|rechnung|factur|fattur|"
    r"customer (?:no|number|id)|kundennummer|kunden-?nr|num[ée]ro (?:de )?client|"
    r"número de cliente|codice cliente|article|artikel|art\.|artículo|articolo|sku|item|"
    r"ref\b|ref\.|reference|referenz|referencia|riferimento|réf|tracking|sendung|suivi|"
    r"seguimiento|iban|bic|account|konto|compte|cuenta|conto|serial|serie|série|model|modèl|"
    r"postcode|zip|plz|code postal|código postal|cap\b|isbn|ean|version)",
    re.IGNORECASE,
)  # a match is a word for a phone when its `phone` group matched, for another number if not
_MONEY_BEFORE = re.compile(r"(?:[€$£¥]|\b(?:eur|usd|gbp|chf))\s?$", re.IGNORECASE)
_UNIT_AFTER = re.compile(
    "\\s?(?:[%\u2030€$£¥°\u00d7]|(?:x|eur|usd|gbp|chf|cm|mm|km|kg|ml|m|g|l|h|min|uhr)"
    "(?![\\w'\u2019]))",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1(?:\d{2}|\d{4})|\d{4}([./-])\d{1,2}\2\d{1,2}")
_NANP = re.compile(r"(?:1([ .-]))?[2-9]\d{2}([ .-])\d{3}\2\d{4}")
_TRUNK = re.compile(r"\(0\)")
_CONTEXT = 32  # characters before a number searched for a word that says what it is
_MOST_DIGITS = 18  # 15 of E.164, an international 00 and a trunk (0)


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for match in _PHONE.finditer(text):
        start, end = match.span()
        if end - start < 7:
            continue  # fewer than 7 digits: most numbers in a text end here
        if not _alone_before(text, start) or (
            text[end : end + 1].isspace() and _UNIT_AFTER.match(text, end)
        ):
            continue  # an amount, a measure ("06 12 34 56 78 %"): the whole run is one
        # The whole run, or without the groups that follow the number ("030 1234567 2 tents",
        # "0800 123 4567 24h").
        ends, digits = [], 0
        for group in re.finditer(r"\d+\)?", match[0]):
            digits += group.end() - group.start()
            if digits > _MOST_DIGITS:
                break
            ends.append(start + group.end())
        for end in reversed(ends):
            if _alone_after(text, end) and _is_phone(text, start, end):
                yield start, end
                break


def _is_phone(text: str, start: int, end: int) -> bool:
    number = _Number.read(text[start:end])
    if number is None:
        return False
    if number.international:
        return True
    context = _what_the_number_is(text, start)
    return context == "phone" or (context == "unknown" and number.shaped_like_a_phone())


@dataclass(frozen=True, slots=True)
class _Number:
    """A run of digits that could be a phone number: 7 to 15 digits, parentheses balanced, no
    lone digit after the first group (a country code, a trunk 0), and not a date, a decimal,
    a version or a time."""

    written: str
    groups: tuple[str, ...]
    separators: frozenset[str]
    digits: str

    @classmethod
    def read(cls, written: str) -> _Number | None:
        if written.count("(") != written.count(")") or _DATE.fullmatch(written):
            return None
        digits = _phone_digits(written)
        groups = tuple(re.findall(r"\d+", _TRUNK.sub("", written)))
        separators = frozenset(re.findall(r"[ \u00a0./-]", written))
        dotted_mess = "." in separators and (separators != {"."} or min(map(len, groups)) < 2)
        lone_digit = any(len(group) < 2 for group in groups[1:])
        if not 7 <= len(digits) <= 15 or dotted_mess or lone_digit:
            return None
        return cls(written, groups, separators, digits)

    @property
    def international(self) -> bool:
        return self.written.startswith(("+", "(+"))

    def shaped_like_a_phone(self) -> bool:
        written, groups = self.written, self.groups
        if written.startswith("00") and written[2:3] not in ("", "0"):
            # 0049 30 123456; written without spaces only when long enough to be one
            return bool(self.separators) or len(self.digits) >= 9
        if written.startswith("("):  # (555) 123-4567, (030) 1234567, (02) 1234 5678
            area = groups[0]
            return (area.startswith("0") or len(area) == 3) and 2 <= len(area) <= 5
        if _NANP.fullmatch(written):
            return True
        if written.startswith("0") and written[1:2] != "0" and self.separators:
            # A trunk 0 and phone groups (06 12 34 56 78, 030/1234567, 0171-1234567); a lone 0
            # only before a freephone prefix (0 800 123 456).
            first = len(groups[0]) >= 2 or (written[1] == " " and len(groups[1]) == 3)
            return first and len(groups) <= 6
        return False


def _phone_digits(written: str) -> str:
    """The digits that make the number: without an international prefix 00 and a "(0)"."""
    digits = re.sub(r"\D", "", _TRUNK.sub("", written))
    return digits[2:] if written.startswith("00") else digits


def _alone_before(text: str, start: int) -> bool:
    """Not the end of a longer number (1,0301234567) or an amount (€ 0301234567)."""
    before = text[max(start - 2, 0) : start]
    if before[-1:] in (".", ",") and before[:1].isdigit():
        return False
    return _MONEY_BEFORE.search(text, max(start - 5, 0), start) is None


def _alone_after(text: str, end: int) -> bool:
    """Not glued to a word, a code or a unit (30x40, 0301234567-B, 24h, 78 %)."""
    after = text[end : end + 2]
    if after[:1].isalnum() or after[:1] in ("_", "+"):
        return False
    if after[:1] in (".", ",", "/", "-") and after[1:2].isalnum():
        return False
    return _UNIT_AFTER.match(text, end) is None


def _what_the_number_is(text: str, start: int) -> Literal["phone", "other", "unknown"]:
    """What the nearest word before the number says it is, on the same line."""
    window_start = max(start - _CONTEXT, 0)
    newline = text.rfind("\n", window_start, start)
    window = text[newline + 1 if newline >= 0 else window_start : start]
    words = list(_NUMBER_WORDS.finditer(window))
    if not words:
        return "unknown"
    return "phone" if words[-1]["phone"] is not None else "other"


# Most specific first: an IBAN's or a card's digits are never read as a phone number.
_DETECTORS: Final[tuple[tuple[Kind, Spans], ...]] = (
    ("email", _emails),
    ("iban", _ibans),
    ("card", _cards),
    ("phone", _phones),
)


# -- keep ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Kept:
    """Values that stay, as each kind compares them."""

    emails: frozenset[str]
    phones: frozenset[str]
    compact: frozenset[str]

    @classmethod
    def of(cls, values: Collection[str]) -> _Kept:
        phones = (_phone_key(value) for value in values)
        return cls(
            emails=frozenset(value.strip().casefold() for value in values),
            phones=frozenset(key for key in phones if len(key.lstrip("+")) >= 7),
            compact=frozenset(_compact(value) for value in values),
        )

    def keeps(self, kind: Kind, value: str) -> bool:
        if kind == "email":
            return value.casefold() in self.emails
        if kind == "phone":
            key = _phone_key(value)
            return any(_same_phone(key, kept) for kept in self.phones)
        return _compact(value) in self.compact


def _phone_key(value: str) -> str:
    """Its digits, after a "+" when international (written with + or 00), without a "(0)"."""
    value = value.strip()
    digits = _phone_digits(value)
    return f"+{digits}" if value.startswith(("+", "(+", "00")) else digits


def _same_phone(a: str, b: str) -> bool:
    """The same digits, or one international and the other national: its trunk 0 dropped, it
    ends the international one, which has one to three digits of country code before it."""
    if a == b:
        return True
    if a.startswith("+") == b.startswith("+"):
        return False
    international, national = (a, b) if a.startswith("+") else (b, a)
    subscriber = national[1:]
    country = len(international) - 1 - len(subscriber)
    return national.startswith("0") and 1 <= country <= 3 and international.endswith(subscriber)
