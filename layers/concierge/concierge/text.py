"""Language-light text processing shared by the local index and the offline model.

Deliberately small and dependency-free: accent folding, stopwords, light suffix-stripping
stemmers for English, Spanish and German (plus a language-blind one for everything else), German
compound splitting against a vocabulary, and stopword-based language detection.

The stemmers aim at conflating the forms a question and a document are likely to use for the
same thing (return/returned/returning; devolver/devuelven/devolución; Lieferung/liefern), not
at producing words: "store" and "stored" both become "stor". Both sides of a comparison must be
analysed the same way, with the same language.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'¿¡(A-ZÁÉÍÓÚÑÄÖÜ0-9])")


def _spaced(text: str) -> frozenset[str]:
    """The words of a whitespace-separated list (long word lists stay readable)."""
    return frozenset(text.split())


# Function words: dropped from index and queries alike (all languages at once, so a question
# in one language is not matched on its function words against documents in another), and
# counted per language by `detect_language`. Folded spelling (no accents, ß -> ss).
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _spaced(
        """
        a an and are as at be by can do does for from has have how i if in is it its me my of
        on or our so that the their them there these they this those to us was we what when
        where which who why will with you your yours about any please tell much many would
        could should did am were been being than then also just get
        he she him her his all some other another such no not nor own same too very both each
        every only again already still now ever really here into may might must shall whether
        someone something anyone anything everyone everything ve ll re don doesn didn isn
        aren wasn weren won hasn haven hadn couldn shouldn wouldn
        """
    ),
    "es": _spaced(
        """
        a al como con cual cuales cuando de del donde el ella ellas ellos en es esa ese eso esta
        este esto estos hay la las le les lo los mas me mi mis muy no nos o para pero por que
        quien se si sin sobre su sus te tu tus un una unas uno unos y ya vosotros usted ustedes
        puedo puede cuanto cuanta cuantos son estan tengo tiene tienen
        cuantas quienes esas esos estas aquel aquella os e u ni tener tienes tenemos teneis
        poder puedes podemos podeis pueden nuestro nuestra nuestros nuestras vuestro vuestra
        vuestros vuestras he ha has hemos han haber hacer hago hace haceis hacen algo alguien
        algun alguno alguna algunos algunas todo toda todos todas otro otra otros otras mismo
        misma tambien todavia aun ahora aqui alli ahi asi cada ser soy eres somos sois era eran
        fue estar estoy estamos entre hacia segun contra hasta desde durante tras porque pues
        aunque
        """
    ),
    "de": _spaced(
        """
        der die das den dem des ein eine einen einem einer und oder aber ist sind war wie was
        wer wo wann warum mit fur auf aus bei bis im in an am zu zum zur von vom ich du er sie
        es wir ihr mein meine ihre ihren unser nicht kein keine auch noch nur kann konnen habe
        hat haben gibt welche welcher welches
        habt hast hatte hatten wird werden wurde wurden sein seine seinen seid bin bist euer
        eure euren eurem eurer euch dich mich mir dir uns sich ihm ihn ihnen ihrem ihrer meinen
        meinem meiner meines dein deine deinen unsere unseren unserem unserer keinen keinem
        keiner dort hier da dann denn wenn weil dass ob als mal schon sehr man jetzt etwas alle
        alles jede jeder jedes diese dieser dieses diesen diesem welchen welchem wieso weshalb
        viel viele gerne bitte doch ja nein durch gegen ohne um nach vor seit zwischen muss
        mussen soll sollte will wollen darf kannst konnt konnte mochte lasst lassen ans ins beim
        """
    ),
    "fr": _spaced(
        """
        le la les un une des du de et ou mais est sont pour par avec sans sur dans au aux ce
        cette ces qui que quoi quel quelle quels comment pourquoi quand ou je tu il elle nous
        vous ils elles mon ma mes votre vos notre nos ne pas plus
        """
    ),
    # Without the Italian words English also uses as words of its own (come, dove, era, ai).
    "it": _spaced(
        """
        il lo gli di del dello della dei degli delle al allo alla agli alle dal dalla dai
        dagli dalle nel nello nella nei negli nelle sul sullo sulla sui sugli sulle che chi
        cui non perche quale quali quanto quanta quanti quante questo questa questi queste
        quello quella quelli quelle sono siamo siete hanno ho hai essere stato stata mio mia
        miei mie tuo tua tuoi tue suo sua suoi sue nostro nostra nostri vostro vostra loro
        anche piu gia ancora molto tutto tutti tutte posso puoi puo possiamo potete possono
        vorrei voglio devo deve dovrei vi ci glielo uno una un cosa sia fra tra ogni per con
        """
    ),
}
ALL_STOPWORDS = frozenset().union(*STOPWORDS.values())


class _FoldTable(dict[int, str]):
    """`str.translate` table from a code point to its folded form (NFKD without combining
    marks), filled on first sight. Per-character folding equals folding the whole text: NFKD
    decomposes character by character and only reorders combining marks, which are dropped."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        self[code] = folded
        return folded


_FOLD = _FoldTable()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _fold_run(match: re.Match[str]) -> str:
    return match.group().translate(_FOLD)


def fold(text: str) -> str:
    """Lower-case and strip accents: 'Envíos' -> 'envios', 'Größe' -> 'grosse'."""
    lowered = text.casefold()
    # ASCII folds to itself: only the runs of other characters go through the table.
    return lowered if lowered.isascii() else _NON_ASCII.sub(_fold_run, lowered)


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def _strip_one(word: str, suffixes: tuple[str, ...], keep: int = 3) -> str:
    """`word` without the first of `suffixes` (longest first) that leaves `keep` letters."""
    for suffix in suffixes:
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: -len(suffix)]
    return word


def _longest_first(*spaced: str) -> tuple[str, ...]:
    """Whitespace-separated suffixes, longest first."""
    return tuple(sorted(frozenset().union(*map(_spaced, spaced)), key=len, reverse=True))


# Language-blind: one suffix of any of the three languages ("n" alone would turn "return"
# into "retur"). Used for languages without a stemmer of their own, and by `terms(text)`.
_ANY_SUFFIXES = _longest_first(
    "est er ers ies es s ing ed ly",
    "ciones cion mente os as o a ar ir ado ada idos",
    "ungen ung en ern e",
)


def _stem_any(word: str) -> str:
    return _strip_one(word, _ANY_SUFFIXES)


_EN_UNDOUBLE = frozenset("bdgmnprt")
_EN_ENDINGS = ("ing", "ed")


def _stem_en(word: str) -> str:
    """Plural, -ed, -ing, then a final -e or -y: return/returns/returned/returning ->
    'return'; store/stores/stored -> 'stor'; delivery/deliveries/delivered -> 'deliver'."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for ending in _EN_ENDINGS:
        if word.endswith(ending):
            base = word[: -len(ending)]
            if len(base) >= 3 and any(vowel in base for vowel in "aeiouy"):
                word = base
                if len(word) > 3 and word[-1] == word[-2] and word[-1] in _EN_UNDOUBLE:
                    word = word[:-1]  # shipped -> shipp -> ship
            break
    final_e = len(word) > 3 and word.endswith("e")
    final_y = len(word) > 4 and word.endswith("y") and word[-2] not in "aeiou"
    return word[:-1] if final_e or final_y else word


_ES_VOWELS = frozenset("aeiou")
# Pronouns written onto an infinitive or gerund: devolverla, enviarnos, probándolo.
_ES_CLITICS = _longest_first("selas selos sela selo nos les los las le lo la me te se")
_ES_CLITIC_HOSTS = ("ar", "er", "ir", "ando", "iendo")
# Nouns made from verbs, singular (the plural is gone by then): devolución -> devolv(er),
# reparación -> repar(ar), producción -> produc(ir), aparcamiento -> aparc(ar).
_ES_DERIVED = (
    ("olucion", "olv"),
    ("uccion", "uc"),
    ("amiento", ""),
    ("imiento", ""),
    ("acion", ""),
    ("icion", ""),
    ("mente", ""),
)
# Verb and gender endings, after the plural -s is gone (so -amos is "amo", -áis is "ai").
# Not the future/conditional or -ía forms: they would split primero/primera, envío/envía.
_ES_ENDINGS = _longest_first(
    "iendo ando ieron aron abamo amo emo imo aste iste aban aba ado ada ido ida",
    "ai ei an en ar er ir o a e i",
)


def _stem_es(word: str) -> str:
    """Plural, pronouns on verbs, verb-made nouns, verb and gender endings, then the stem
    vowels that change under stress (ue -> o, ie -> e): devolver, devuelven, devolvemos,
    devolverla, devolución, devoluciones -> 'devolv'; cuesta/coste/costar -> 'cost'."""
    if len(word) <= 3:
        return word
    if word.endswith("ces") and len(word) > 4:
        word = word[:-3] + "z"  # veces -> vez
    elif word.endswith("es") and len(word) > 4 and word[-3] not in _ES_VOWELS:
        word = word[:-2]  # lugares -> lugar, devoluciones -> devolucion
    elif word.endswith("s") and word[-2] in _ES_VOWELS:
        word = word[:-1]  # tiendas -> tienda, abris -> abri
    for clitic in _ES_CLITICS:
        if word.endswith(clitic):
            host = word[: -len(clitic)]
            if len(host) >= 5 and host.endswith(_ES_CLITIC_HOSTS):
                word = host
            break
    for ending, replacement in _ES_DERIVED:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[: -len(ending)] + replacement
            break
    else:
        word = _strip_one(word, _ES_ENDINGS)
    return _es_diphthongs(word)


def _es_diphthongs(stem: str) -> str:
    """Stressed o and e become ue and ie in many verbs (volver/vuelve, cerrar/cierra,
    perder/pierdo, costar/cuesta): one spelling for both. Not the u of gue/que (guerra)."""
    if "ie" in stem:
        stem = stem.replace("ie", "e")
    if "ue" in stem:
        stem = re.sub(r"(?<![gq])ue", "o", stem)
    return stem


_DE_DERIVED = _longest_first("ungen ung heiten heit keiten keit lichen licher liches lich")
_DE_ENDINGS = _longest_first("ern em en er es e")
_DE_S_ENDING = frozenset("bdfghklmnrt")  # a final s after these is an ending (Geschäfts)


def _stem_de(word: str) -> str:
    """Umlauts typed as ae/oe/ue, derivational -ung/-heit/-keit/-lich, then inflection:
    Lieferung, Lieferungen, liefern -> 'lief'; Farbe, Farben -> 'farb'; Preis stays 'preis'."""
    if "ae" in word or "oe" in word or "ue" in word:
        word = word.replace("ae", "a").replace("oe", "o").replace("ue", "u")
    if len(word) <= 3:
        return word
    word = _strip_one(word, _DE_DERIVED)
    stripped = _strip_one(word, _DE_ENDINGS)
    if stripped == word and word.endswith("s") and len(word) > 4 and word[-2] in _DE_S_ENDING:
        stripped = word[:-1]
    return stripped


_STEMMERS: dict[str, Callable[[str], str]] = {"en": _stem_en, "es": _stem_es, "de": _stem_de}


class _Terms(dict[str, str]):
    """word -> its term with one stemmer, or "" for a stopword or a lone letter; filled on
    first sight, so a text is analysed with one dictionary look-up per word."""

    _LIMIT = 200_000  # words remembered (questions bring new ones): start over beyond it

    def __init__(self, stemmer: Callable[[str], str]) -> None:
        super().__init__()
        self.stemmer = stemmer

    def __missing__(self, word: str) -> str:
        if len(self) >= self._LIMIT:
            self.clear()
        content = word not in ALL_STOPWORDS and (len(word) > 1 or word.isdigit())
        term = self.stemmer(word) if content else ""
        self[word] = term
        return term


_TERMS = {language: _Terms(stemmer) for language, stemmer in _STEMMERS.items()}
_TERMS_ANY = _Terms(_stem_any)


def stem(word: str, language: str | None = None) -> str:
    """The stem of a folded word, with `language`'s stemmer (the language-blind one for None
    or a language without a stemmer of its own)."""
    return _STEMMERS.get(language or "", _stem_any)(word)


def terms(
    text: str, language: str | None = None, compounds: frozenset[str] | None = None
) -> list[str]:
    """Content terms of `text`: folded, stopwords removed, stemmed for `language`.

    With `compounds` (German stems the caller knows as words, e.g. an index's vocabulary),
    every compound that `split_compound` can split is followed by the stems of its parts."""
    table = _TERMS.get(language or "", _TERMS_ANY)
    if compounds is None:
        return [term for term in map(table.__getitem__, words(text)) if term]
    result = []
    for word in words(text):
        term = table[word]
        if term:
            result.append(term)
            result.extend(table.stemmer(part) for part in split_compound(word, compounds))
    return result


_MIN_COMPOUND = 8
_MIN_HEAD = 4  # the last part, which says what the compound is (Express|versand)
_MIN_MODIFIER = 3


@lru_cache(maxsize=65_536)
def _split(word: str, known: frozenset[str]) -> tuple[str, ...]:
    for start in range(_MIN_MODIFIER, len(word) - _MIN_HEAD + 1):
        head = word[start:]
        if _stem_de(head) in known:
            modifier = word[:start]
            inner = _split(modifier, known) if len(modifier) >= _MIN_COMPOUND else ()
            return (*(inner or (modifier,)), head)
    return ()


def split_compound(word: str, known: frozenset[str]) -> tuple[str, ...]:
    """The parts of a German compound whose head (last part, the longest possible) is a
    known word: 'expressversand' -> ('express', 'versand') when 'versand' is known; the
    modifier is split again the same way. () when `word` is short or has no known head.

    `known` holds `stem(..., "de")` forms. German writes compounds as one word, so a question
    about "Expresslieferung" shares "express" with a text about "Expressversand" only once
    both are split."""
    return _split(word, known) if len(word) >= _MIN_COMPOUND else ()


def detect_language(text: str, default: str = "en") -> str:
    """The language whose stopwords `text` uses most; `default` when there is no evidence."""
    tokens = words(text)
    counts = Counter({lang: sum(t in stops for t in tokens) for lang, stops in STOPWORDS.items()})
    # Spanish punctuation and letters are strong signals on short questions.
    if "¿" in text or "¡" in text or "ñ" in text.lower():
        counts["es"] += 2
    if any(ch in text.lower() for ch in "äöüß"):
        counts["de"] += 2
    language, best = counts.most_common(1)[0]
    return language if best > 0 else default


def sentences(text: str) -> list[str]:
    """Split prose into sentences. Markdown headings are titles, not statements: skipped.
    List items and table rows become their own units."""
    units: list[str] = []
    for raw_line in text.splitlines():
        stripped = raw_line.strip()
        if stripped.startswith("#") or set(stripped) <= set("|-: "):
            continue
        line = stripped.lstrip("-*").strip().strip("|").replace(" | ", ", ").strip()
        if line:
            units.extend(part.strip() for part in _SENTENCE_END.split(line) if part.strip())
    return units


def snippet(text: str, limit: int = 240) -> str:
    """A passage as one line of at most `limit` characters: Markdown heading marks and line
    breaks flattened, an ellipsis where it is cut."""
    flat = " ".join(line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
