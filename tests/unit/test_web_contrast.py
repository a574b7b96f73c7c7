"""The web page's palette (the custom properties of web/style.css) reads well: WCAG 2.x contrast
ratios, computed here, of at least 4.5:1 for text on its background (AA, normal size) and 3:1
for the borders and the focus ring that show where a control is (non-text contrast)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STYLE = Path(__file__).resolve().parents[2] / "web" / "style.css"

# (foreground, background, what it is): every pairing of the stylesheet's colours.
TEXT = [
    ("ink", "paper", "body text"),
    ("ink", "surface", "text on the header and disabled fields"),
    ("ink", "accent-soft", "the user's question"),
    ("muted", "paper", "hints, metadata, file names, request ids"),
    ("muted", "surface", "who is signed in, in the header"),
    ("accent", "paper", "links, markers, source titles, quiet buttons"),
    ("accent-ink", "accent", "primary buttons and pressed thumbs"),
    ("danger", "paper", "the Forget button in the toolbar"),
    ("danger-ink", "danger", "the Forget button in the dialog"),
    ("error-ink", "error-paper", "error messages"),
    ("note-ink", "note-paper", "guardrail notes"),
    ("ok-ink", "paper", "the From cache marker"),
]
NON_TEXT = [
    ("line", "paper", "borders of fields, answers and quiet buttons"),
    ("line", "surface", "the header's border"),
    # The ring is drawn 2 px outside the control, on the page's background.
    ("focus", "paper", "the focus ring"),
    ("focus", "surface", "the focus ring on the header"),
]


def palette() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", STYLE.read_text(encoding="utf-8"), re.S)
    assert root is not None
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", root.group(1)))


def luminance(colour: str) -> float:
    """Relative luminance of an sRGB colour `#rrggbb` (WCAG 2.x)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_ratio_matches_published_values() -> None:
    # Given black, white and the mid grey WCAG's own examples use
    # When their ratios are computed
    # Then they are 21:1, 1:1 and about 4.5:1 (#767676 on white)
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize(("fg", "bg", "what"), TEXT, ids=[w for _, _, w in TEXT])
def test_text_has_at_least_4_5_to_1(fg: str, bg: str, what: str) -> None:
    # Given the page's palette
    colours = palette()
    # When the text colour is set against its background
    ratio = contrast(colours[fg], colours[bg])
    # Then it reads (WCAG AA, normal text)
    assert ratio >= 4.5, f"{what}: --{fg} on --{bg} is {ratio:.2f}:1"


@pytest.mark.parametrize(("fg", "bg", "what"), NON_TEXT, ids=[w for _, _, w in NON_TEXT])
def test_borders_and_focus_have_at_least_3_to_1(fg: str, bg: str, what: str) -> None:
    # Given the page's palette
    colours = palette()
    # When a border or the focus ring is set against what surrounds it
    ratio = contrast(colours[fg], colours[bg])
    # Then it can be seen (WCAG 1.4.11, non-text contrast)
    assert ratio >= 3.0, f"{what}: --{fg} on --{bg} is {ratio:.2f}:1"


def test_every_colour_of_the_palette_is_checked() -> None:
    # Given the palette and the pairs above
    checked = {name for fg, bg, _ in TEXT + NON_TEXT for name in (fg, bg)}
    # When they are compared
    # Then no colour of the stylesheet goes unchecked
    assert set(palette()) == checked
