"""Redaction of personal data in the copy of the text that reports may quote.

Emails and phone numbers are always replaced (`redact_contacts`, also used on every string of every output
file); personal names (spans passed in by the caller) only for private individuals, whose names must not
appear in a published report. The original text stays in `text_clean` for analysis.

Phone numbers are found in two steps so that both stay linear in the text length (these functions run on
every cell of every output): one possessive regex finds runs of digits and phone separators, then plain
Python checks the shape of each run (international prefix, national trunk "0", North American 3-3-4, or a
"Tel:" cue in front). Years, dates, money, thousands-grouped statistics, ISO/article numbers are not phones.
"""

from __future__ import annotations

import re

__all__ = ["EMAIL", "PHONE", "PLACEHOLDERS", "PLACEHOLDER_RE", "looks_like_name", "name_spans", "pii_spans",
           "redact", "redact_contacts", "redact_emails"]

PLACEHOLDERS = ("[email]", "[phone]", "[name]")
PLACEHOLDER_RE = re.compile(r"\[(?:email|phone|name)\]")

# Possessive quantifiers: a failed match never re-scans the run it consumed (linear time).
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)*+")
_TLD = re.compile(r"[A-Za-z]{2,}")
# A run of digits and phone separators; starts at a "+" or a digit (or "(" before one), not inside a word or
# number. Its shape is checked in `_phone_spans`.
PHONE = re.compile(
    r"(?:(?<![\d+])\+[ \t\u00a0\u202f]?|(?<![\w.,+\-/]))\(?\d[\d \t\u00a0\u202f().\-/]*+"
)
_PIECES = re.compile(r"\d+|\D+")
_SPACE_RUN = re.compile(r"[ \t\u00a0\u202f]+")
_STRONG_CUE = re.compile(
    r"(?:\b(?:tel|tél|tlf|phone|telephone|téléphone|telefon|telefono|teléfono|telefone|mobile|mob|móvil|"
    r"movil|cell|cellphone|celular|fax|whatsapp)|☎|📞)"
    r"\.?\s*(?:\((?:office|mobile|home|work|direct)\)\s*)?(?:no\.?|number|nr\.?|n°)?\s*[:.]?\s*$"
    r"|\b(?:t|p|m|f|ph|o)\s*:\s*$",  # letterheads: "T: +49 30 2028-0", "P: (02) 9900 0600"
    re.I,
)
_WEAK_CUE = re.compile(r"\b(?:call|ring|contact)(?:\s+(?:us|me|them))?(?:\s+(?:on|at))?\s*:?\s*$", re.I)
# Numbers that are identifiers or amounts, not phones: "ISO 27001", "Article 17", "VAT No: BE 0437.785.744",
# "ABN 56 650 620 303", "$ 1 000 000".
_NOT_PHONE_BEFORE = re.compile(
    r"(?:\b(?:iso|iec|din|isbn|issn|doi|orcid|article|art|arts|para|paragraph|paragraphs|section|sections|"
    r"resolution|res|decision|regulation|directive|law|act|case|page|pages|pp|no|ref|id|sdg|sdgs|target|"
    r"vat|tva|btw|iva|ust|gst|abn|acn|ein|tin|pan|cin|siren|siret|register|registration|reg|"
    r"usd|eur|gbp|chf|inr|kes|jpy|cny|us\$)\.?(?:\s*(?:no|nr|number|id)\.?)?\s*[:#]?\s*(?:[a-z]{2}[ \t]?)?"
    r"|[$€£¥₹§])\s*$",
    re.I,
)
_NOT_PHONE_AFTER = re.compile(r"\s{0,2}(?:%|‰|°|percent|per\s+cent|million|billion|bn\b|m\b|km|kg|usd|eur)", re.I)
_YEAR = re.compile(r"(?:19|20)\d\d")
_ALLOWED_SEP = frozenset({" ", "-", ".", "/", "\t", "\u00a0", "\u202f", "", " - "})


def _groups(run: str) -> tuple[list[list[str]], list[list[str]], list[int]]:
    """Split a run into candidates of digit groups joined by one separator (parentheses aside).

    "020 7946 0958 / 07911 123456" holds two candidates; "011 - 23739295" one.
    Returns (groups per candidate, separators per candidate, start offset of each candidate in `run`).
    """
    cands: list[list[str]] = [[]]
    seps: list[list[str]] = [[]]
    starts: list[int] = []
    pos = 0
    pending = ""
    for piece in _PIECES.findall(run):
        if piece[0].isdigit():
            if not cands[-1]:
                starts.append(pos)
            else:
                seps[-1].append(pending)
            cands[-1].append(piece)
        else:
            bare = _SPACE_RUN.sub(" ", piece.replace("(", "").replace(")", ""))
            if cands[-1] and bare not in _ALLOWED_SEP:
                cands.append([])
                seps.append([])
            pending = piece
        pos += len(piece)
    if not cands[-1]:
        cands.pop()
        seps.pop()
    return cands, seps, starts


def _date_or_years(groups: list[str], seps: list[str]) -> bool:
    if all(_YEAR.fullmatch(g) for g in groups):
        return True
    for k in range(len(groups) - 2):
        if seps[k] != seps[k + 1] or seps[k].strip() not in {".", "/", "-"}:
            continue
        a, b, c = groups[k : k + 3]
        x, y, z = int(a), int(b), int(c)
        day_month = 1 <= min(x, y) <= 12 and max(x, y) <= 31
        if len(a) <= 2 and len(b) <= 2 and len(c) in (2, 4) and day_month:
            return True  # 11/02/2025, 02.11.25, 2/11/2025
        if len(a) == 4 and len(b) <= 2 and len(c) <= 2 and 1 <= y <= 12 and 1 <= z <= 31:
            return True  # 2025-02-11
    return False


def _thousands(groups: list[str], seps: list[str]) -> bool:
    """1 234 567 / 12.500.000: a number written with thousands separators."""
    return (
        len(groups) >= 2 and 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])
        and len(set(seps)) == 1
    )


def _balanced(seps: list[str], opened: bool) -> bool:
    """Parentheses only around a group ("(022) 730 5111", "+44 (0)20"), not "796-803 (2012"."""
    depth = int(opened)
    for sep in seps:
        for ch in sep:
            depth += (ch == "(") - (ch == ")")
            if depth < 0 or depth > 1:
                return False
    return depth == 0


def _is_phone(groups: list[str], seps: list[str], plus: bool, cue: str) -> bool:
    """Whether digit groups (joined by `seps`) have the shape of a phone number."""
    n = sum(map(len, groups))
    if _date_or_years(groups, seps):
        return False
    if plus:  # "+44 20 7946 0958", "+61 435 948 464", "+32 2 60953-21"; not "+100 000 000"
        return 8 <= n <= 15 and not (_thousands(groups, seps) and groups[-1] == "000")
    if len(groups) >= 2 and seps[-1] == "-" and len(groups[-1]) <= 2 and len(groups[-2]) >= 4:
        return False  # "0289344948-82", "535 183 0264-31": an identifier with check digits
    if cue == "strong":
        return 6 <= n <= 15
    if _thousands(groups, seps):
        return False
    if cue == "weak":
        return 6 <= n <= 15
    first = groups[0]
    if first.startswith("00") and len(first) >= 3 and first[2] != "0":
        return 10 <= n <= 17  # 0041 22 730 5111
    sizes = [len(g) for g in groups]
    nanp = sizes == [3, 3, 4] or (sizes == [1, 3, 3, 4] and first == "1")
    if nanp and "/" not in "".join(seps) and groups[-3][0] in "23456789":  # area codes start 2-9
        return True  # 555 123 4567, (555) 123-4567, 1-555-123-4567
    if first.startswith("0") and len(first) >= 2:
        return 9 <= n <= 12 if len(groups) > 1 else 10 <= n <= 11  # 07911 123456, (022) 730 5111
    return False


def _phone_spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for m in PHONE.finditer(text):
        run = m.group(0)
        if len(run) < 6:
            continue  # most runs are years and small numbers
        plus = run.startswith("+")
        cands, seps, starts = _groups(run)
        for k, (groups, sep, off) in enumerate(zip(cands, seps, starts, strict=True)):
            n = sum(map(len, groups))
            if n < 6:
                continue
            intl = plus and k == 0
            start = m.start() if intl else m.start() + off
            opened = not intl and start > 0 and text[start - 1] == "("
            if opened:
                start -= 1  # "(555) 123-4567", "t(202) 994-5794": the parenthesis belongs to the number
            if not _balanced(sep, opened or (intl and "(" in run[:off])):
                continue
            end = m.start() + off + n + sum(map(len, sep))
            before = text[max(0, start - 40) : start]
            glued = end < len(text) and text[end].isalnum()  # "385Information" in PDF text, or "2015km"
            cue = "strong" if _STRONG_CUE.search(before) else "weak" if _WEAK_CUE.search(before) else ""
            if not cue and (
                (not intl and _NOT_PHONE_BEFORE.search(before)) or _NOT_PHONE_AFTER.match(text, end)
            ):
                continue
            if glued and not (intl or cue == "strong"):
                continue
            if n <= 17 and _is_phone(groups, sep, intl, cue):
                spans.append((start, end, "[phone]"))
    return spans


def _email_spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for m in EMAIL.finditer(text):
        local, _, domain = m.group(0).partition("@")
        labels = domain.split(".")
        while len(labels) > 1 and not _TLD.fullmatch(labels[-1]):
            labels.pop()  # "a@b.org.c1" -> "a@b.org"
        if len(labels) < 2 or not _TLD.fullmatch(labels[-1]) or not local.strip(".+-"):
            continue
        spans.append((m.start(), m.start() + len(local) + 1 + len(".".join(labels)), "[email]"))
    return spans


def pii_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, placeholder) for emails and phone numbers, sorted, non-overlapping."""
    spans = _email_spans(text) if "@" in text else []
    if any(ch.isdigit() for ch in text):
        spans += _phone_spans(text)
    return _merge(spans)


_NAME_PART = re.compile(r"^[A-Z][a-zà-ÿ'’\-]+\.?$|^[A-Z]\.?$")
_NOT_NAME = re.compile(
    r"\b(?:independent|individual|citizen|researcher|consultant|student|private|person|self|none|"
    r"anonymous|n/?a|retired|professor|expert|freelance\w*)\b",
    re.I,
)


def name_spans(text: str, person_name: str) -> list[tuple[int, int]]:
    """Spans of a known respondent name (as given in the form) and of its parts in `text`.

    NER misses names in signatures and letterheads ("Wg Cdr A. Name (Retd)"); for an individual
    the form's name field tells us what to look for. Only applied when the field looks like a
    personal name (2-4 capitalised words, no "independent researcher" style words).
    """
    name = " ".join(person_name.split())
    parts = name.split(" ")
    if not 2 <= len(parts) <= 4 or _NOT_NAME.search(name) or not all(_NAME_PART.match(p) for p in parts):
        return []
    words = sorted({p.rstrip(".") for p in parts if len(p.rstrip(".")) >= 3}, key=len, reverse=True)
    pattern = re.compile(
        r"\b(?:" + "|".join([re.escape(name)] + [re.escape(w) for w in words]) + r")\b"
    )
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


_NAME_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "del", "della", "du", "la", "le", "bin",
                             "bint", "ibn", "al", "el", "y", "e", "and"})


def looks_like_name(span: str) -> bool:
    """A PERSON entity worth redacting: capitalised words ("Ada Lovelace", "Charles de Gaulle").

    NER also tags lower-case phrases ("être auditables", "sein müssen") on text it cannot read.
    """
    words = span.split()
    if not words or not (words[0][:1].isupper() and words[-1][:1].isupper()):
        return False
    return all(w[:1].isupper() or w.lower() in _NAME_PARTICLES for w in words)


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans):
        if out and start < out[-1][1]:
            prev = out[-1]
            out[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            out.append((start, end, label))
    return out


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for start, end, label in _merge(spans):
        parts.append(text[last:start])
        parts.append(label)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def redact_contacts(text: str) -> str:
    """Replace emails and phone numbers (only those: no names) with `[email]` / `[phone]`."""
    if not text:
        return text
    return _replace(text, pii_spans(text))


def redact_emails(text: str) -> str:
    """Only emails: for identifier cells, where a phone-shaped id ("01234567890") must stay joinable."""
    if not text or "@" not in text:
        return text
    return _replace(text, _email_spans(text))


def redact(text: str, name_spans: list[tuple[int, int]] | None = None) -> str:
    """`redact_contacts`, and the given name spans replaced by `[name]`."""
    spans = pii_spans(text) + [(s, e, "[name]") for s, e in (name_spans or []) if 0 <= s < e <= len(text)]
    return _replace(text, spans)
