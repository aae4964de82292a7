"""Redaction of personal data in the copy of the text that reports may quote.

Emails and phone numbers are always replaced; personal names (spaCy PERSON spans, passed in by the
caller) only for private individuals, whose names must not appear in a published report.
The original text stays in `text_clean` for analysis.
"""

from __future__ import annotations

import re

__all__ = ["EMAIL", "PHONE", "name_spans", "pii_spans", "redact"]

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")
# International and common national phone formats; validated by digit count below.
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+|00)\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,5}(?:[\s.\-]?\d{1,5}){1,5}"  # +41 22 730 5111
    r"|\(\d{2,5}\)[\s.\-]?\d{2,5}(?:[\s.\-]?\d{2,5}){1,3}"  # (022) 730 5111
    r"|\d{3}[.\-]\d{3}[.\-]\d{4}"  # 202-555-0143
    r"|\d{2,5}(?:[\s.\-/]\d{2,5}){2,5}(?=\s*$|\s*[),;])"  # 022 730 51 11 (line/clause end)
    r")(?![\w])"
)
_PHONE_CUE = re.compile(
    r"(?:tel|phone|telephone|téléphone|telefon|teléfono|mobile|mob|cell|fax|whatsapp|call)"
    r"\.?\s*(?:no\.?|number|nr\.?)?\s*[:.]?\s*$",
    re.I,
)
_CUED_NUMBER = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_DATE_LIKE = re.compile(r"^\d{1,4}[.\-/]\d{1,2}[.\-/]\d{1,4}$|^(?:19|20)\d{2}\s*[\-\u2013]\s*(?:19|20)?\d{2}$")


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def pii_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, placeholder) for emails and phone numbers, sorted, non-overlapping."""
    spans: list[tuple[int, int, str]] = [(m.start(), m.end(), "[email]") for m in EMAIL.finditer(text)]
    for m in PHONE.finditer(text):
        s = m.group(0)
        n = _digits(s)
        intl = s.startswith(("+", "00"))
        if _DATE_LIKE.match(s.strip()) or not (8 if intl else 9) <= n <= 15:
            continue
        spans.append((m.start(), m.end(), "[phone]"))
    for m in _CUED_NUMBER.finditer(text):
        if _PHONE_CUE.search(text[max(0, m.start() - 30) : m.start()]) and 6 <= _digits(m.group(0)) <= 15:
            spans.append((m.start(), m.end(), "[phone]"))
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


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans):
        if out and start < out[-1][1]:
            prev = out[-1]
            out[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            out.append((start, end, label))
    return out


def redact(text: str, name_spans: list[tuple[int, int]] | None = None) -> str:
    """Replace emails, phone numbers and the given name spans with placeholders."""
    spans = pii_spans(text) + [(s, e, "[name]") for s, e in (name_spans or []) if 0 <= s < e <= len(text)]
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
