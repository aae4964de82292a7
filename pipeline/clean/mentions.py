"""Explicit mentions of WSIS Action Lines and SDGs in free text, as normalised label codes.

Respondents often name the framework directly ("Action Line C7 e-health", "SDGs 3 and 5",
"target 16.10"). Such explicit mentions are near-certain evidence for the tagger and must not
depend on a learned model, so they are found with conservative regular expressions here.

Codes follow the project label set: Action Lines ``C1``..``C11`` plus the C7 sub-areas
``C7.e-government`` ... ``C7.e-science`` (a sub-area mention also yields its parent ``C7``);
SDGs ``"1"``..``"17"``. Lists come back unique and in canonical label order (C1, C2, ..., C7,
C7.e-government, ..., C8, ..., C11; SDGs numerically), which is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ACTION_LINE_CODES", "SDG_CODES", "Mentions", "find_mentions"]

C7_SUBAREAS = (
    "e-government",
    "e-business",
    "e-learning",
    "e-health",
    "e-employment",
    "e-environment",
    "e-agriculture",
    "e-science",
)
ACTION_LINE_CODES: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"C7.{s}" for s in C7_SUBAREAS),
    *(f"C{i}" for i in range(8, 12)),
)
SDG_CODES: tuple[str, ...] = tuple(str(i) for i in range(1, 18))
_AL_ORDER = {code: i for i, code in enumerate(ACTION_LINE_CODES)}


@dataclass(frozen=True)
class Mentions:
    """Explicit framework mentions found in one text."""

    action_lines: list[str] = field(default_factory=list)
    sdgs: list[str] = field(default_factory=list)
    agenda_2030: bool = False  # the 2030 Agenda / the SDGs named without a goal number


_DASH = r"[-\u2010\u2011\u2012\u2013\u2014]"
_SEP = r"(?:\s*(?:,|;|/|&|\band\b|\bor\b|\b(?:y|et|und|e)\b|\bas\s+well\s+as\b)\s*(?:the\s+)?)"
_RANGE = rf"(?:\s*(?:{_DASH}|\bto\b|\bthrough\b|\buntil\b)\s*)"

# --- C7 sub-areas and Action Line titles (used only next to "action line" or "C7") ------------
_SUB_PATTERNS: dict[str, str] = {
    "e-government": r"e\s?(?:{d})?\s?gov(?:ernment)?",
    "e-business": r"e\s?(?:{d})?\s?business",
    "e-learning": r"e\s?(?:{d})?\s?learning",
    "e-health": r"e\s?(?:{d})?\s?health",
    "e-employment": r"e\s?(?:{d})?\s?employment",
    "e-environment": r"e\s?(?:{d})?\s?environment",
    "e-agriculture": r"e\s?(?:{d})?\s?agriculture",
    "e-science": r"e\s?(?:{d})?\s?science",
}
_SUB_RES = {k: re.compile(rf"^(?:{v.format(d=_DASH)})$", re.I) for k, v in _SUB_PATTERNS.items()}
_SUB_ANY = "|".join(f"(?:{v.format(d=_DASH)})" for v in _SUB_PATTERNS.values())

# Titles of the Action Lines (short forms people use), mapped to codes.
_TITLE_PATTERNS: dict[str, str] = {
    r"(?:the\s+)?role\s+of\s+(?:public\s+governance\s+authorities|governments)(?:\s+and\s+all\s+"
    r"stakeholders)?": "C1",
    r"(?:information\s+and\s+communication\s+)?infrastructure": "C2",
    r"access\s+to\s+information\s+and\s+knowledge": "C3",
    r"capacity[\s\-]building": "C4",
    r"(?:building\s+)?confidence\s+and\s+security(?:\s+in\s+the\s+use\s+of\s+ICTs?)?": "C5",
    r"enabling\s+environment": "C6",
    r"ICT\s+applications": "C7",
    r"cultural\s+diversity(?:\s+and\s+identity)?(?:,?\s+linguistic\s+diversity)?"
    r"(?:\s+and\s+local\s+content)?": "C8",
    r"media": "C9",
    r"ethical\s+dimensions(?:\s+of\s+the\s+information\s+society)?": "C10",
    r"international\s+and\s+regional\s+cooperation": "C11",
}
_TITLE_RES = [(re.compile(rf"^(?:{p})$", re.I), c) for p, c in _TITLE_PATTERNS.items()]
_TITLE_ANY = "|".join(f"(?:{p})" for p in _TITLE_PATTERNS)
_TOPIC = rf"(?:{_SUB_ANY}|{_TITLE_ANY})"
_TOPIC_LIST = rf"(?:{_TOPIC}(?:{_SEP}{_TOPIC})*)"
_TOPIC_RE = re.compile(_TOPIC, re.I)
_ACTION_LINE = r"(?:WSIS\s+)?action[\s\-]lines?"

# "Action Line(s) on e-health and e-agriculture", "the e-health action line",
# "capacity building and media action lines".
_AL_THEN_TOPICS = re.compile(
    rf"\b{_ACTION_LINE}\s*(?:\(?\s*C\s?7\s*\)?\s*)?(?::|{_DASH})?\s*(?:on|for|of|regarding|about)?\s*"
    rf"(?:the\s+)?(?P<topics>{_TOPIC_LIST})\b",
    re.I,
)
_TOPICS_THEN_AL = re.compile(
    rf"\b(?P<topics>{_TOPIC_LIST})\s*(?:\(\s*C\s?\d{{1,2}}\s*\)\s*)?{_ACTION_LINE}\b", re.I
)
# "C7 e-health", "C7 (e-learning)", "C7: e-health", "C7.e-health", "C7 on e-health and e-science".
_C7_THEN_SUBS = re.compile(
    rf"(?<![\w\-/.])C\s?7\s*(?:[.:(,]|{_DASH})?\s*(?:on\s+|for\s+)?(?:the\s+)?"
    rf"(?P<topics>(?:{_SUB_ANY})(?:{_SEP}(?:{_SUB_ANY}))*)\b",
    re.I,
)
# "e-health (C7)"
_SUBS_THEN_C7 = re.compile(rf"\b(?P<topics>{_SUB_ANY})\s*\(\s*(?:Action\s+Line\s+)?C\s?7\s*\)", re.I)

# --- bare codes: "C5", "AL C3", "Action Lines C1 to C3", "C1-C11" ------------------------------
_CODE = r"C(?:1[01]|[1-9])"  # "C 5" only after "action line" (see below)
_NOT_BEFORE = (
    r"(?<![\w\-/.#@&%=])"  # not part of a token such as "AC5", "C4-C5ISR", "file/C5", "%C4"
)
_REFERENCE_WORDS = re.compile(
    r"(?:table|figure|fig\.?|annex|appendix|section|paragraph|para\.?|page|item|box|chapter|part|"
    r"clause|article|art\.?|no\.?|question|row|column|cell|level|grade|class|category|type|model)"
    r"\s*$",
    re.I,
)
_CODE_RUN = re.compile(
    rf"{_NOT_BEFORE}(?P<first>{_CODE})(?P<rest>(?:(?:{_RANGE}|{_SEP}){_CODE})*)"
    rf"(?![\w@%]|[.\-/]\w|\s?\+)",
)
_CODE_IN_RUN = re.compile(rf"(?P<sep>{_RANGE}|{_SEP})?C(?P<n>1[01]|[1-9])")
_AL_CONTEXT = re.compile(rf"(?:{_ACTION_LINE}|\bAL|WSIS)\s*[:(]?\s*$", re.I)
# "c5" / "C 5" are only accepted right after "action line"/"AL".
_LOWER_CODE_AFTER_AL = re.compile(
    rf"\b(?:{_ACTION_LINE}|AL)\s*[:(]?\s*c\s?(?P<n>1[01]|[1-9])(?![\w\-])", re.I
)

# --- SDGs -----------------------------------------------------------------------------------
_NUM = r"(?:1[0-7]|0?[1-9])"
_TARGET_SUFFIX = r"(?:\.(?:1[0-9]|[1-9]|[a-d])(?:\.\d{1,2})?)"
_NUMREF = rf"(?:{_NUM}{_TARGET_SUFFIX}?)"
_NUM_LIST = rf"(?:{_NUMREF}(?:(?:{_RANGE}|{_SEP}){_NUMREF})*)"
_NUMBER_WORD = r"(?:\s*(?:#|no\.?|nos\.?|number|nr\.?|n°|n\.?º)\s*)?"
_SDG_ABBREV = r"(?:\bSDGs?|\bS\.D\.G\.?s?|\bODS|\bODD)"  # "SDG4" needs no space
_SDG_WORDS = (  # the long forms need a separator before the number ("Goals5" is a footnote)
    r"(?:\bSustainable\s+Development\s+Goals?(?:\s*\(\s*SDGs?\s*\))?|\bGlobal\s+Goals?"
    r"|\bObjetivos?\s+de\s+Desarrollo\s+Sostenible|\bObjectifs?\s+de\s+d[ée]veloppement\s+durable"
    r"|\bZiele?\s+für\s+nachhaltige\s+Entwicklung)(?=\s|\s*[-#\u2013])"
)
_SDG_PREFIX = rf"(?:{_SDG_ABBREV}|{_SDG_WORDS})"
_SDG_RE = re.compile(
    rf"{_SDG_PREFIX}\s*(?:{_DASH}\s*)?(?:targets?\s+|indicators?\s+)?{_NUMBER_WORD}"
    rf"(?P<nums>{_NUM_LIST})(?![\d%])(?!\s*(?:%|percent|per\s+cent|million|billion))",
    re.I,
)
# "Goal 9", "Goals 3 and 5" (capitalised only: lower-case "goal 2" is too often generic).
_GOAL_RE = re.compile(
    rf"\bGoals?(?=\s|\s*[-#\u2013])\s*{_NUMBER_WORD}(?P<nums>{_NUM_LIST})(?![\d%.,]\d)(?!\s*(?:%|percent|million|billion))"
)
# "target 9.c", "SDG target 16.10", "targets 9.c and 17.8", "indicator 17.8.1".
_TARGET_RE = re.compile(
    rf"\b(?:targets?|indicators?)\s+{_NUMBER_WORD}(?P<nums>{_NUM}{_TARGET_SUFFIX}"
    rf"(?:{_SEP}{_NUM}{_TARGET_SUFFIX})*)(?![\d%])(?!\s*(?:%|percent|million|billion))",
    re.I,
)
_NUM_IN_LIST = re.compile(rf"(?P<sep>{_RANGE}|{_SEP})?(?P<n>{_NUM})(?P<suffix>{_TARGET_SUFFIX})?")
_AGENDA_RE = re.compile(
    r"\b(?:2030\s+Agenda|Agenda\s+2030|Agenda\s+for\s+Sustainable\s+Development|"
    r"Sustainable\s+Development\s+Goals|SDGs|Global\s+Goals|Agenda\s+de\s+2030|Agenda\s+2030|"
    r"Objetivos\s+de\s+Desarrollo\s+Sostenible|Objectifs\s+de\s+d[ée]veloppement\s+durable)\b",
    re.I,
)


def _sub_code(text: str) -> str | None:
    cleaned = re.sub(r"\s+", " ", text.strip())
    for name, rx in _SUB_RES.items():
        if rx.match(cleaned):
            return f"C7.{name}"
    for rx, code in _TITLE_RES:
        if rx.match(cleaned):
            return code
    return None


def _topics_to_codes(topics: str) -> set[str]:
    codes: set[str] = set()
    for m in _TOPIC_RE.finditer(topics):
        code = _sub_code(m.group(0))
        if code:
            codes.add(code)
    return codes


def _expand(numbers: list[tuple[str | None, int]], low: int, high: int) -> set[int]:
    """Turn [(separator, n), ...] into a set, expanding "1 to 3" / "1-3" ranges."""
    out: set[int] = set()
    prev: int | None = None
    for sep, n in numbers:
        if not low <= n <= high:
            prev = None
            continue
        if sep is not None and prev is not None and re.fullmatch(_RANGE, sep, re.I) and prev < n:
            out.update(range(prev, n + 1))
        else:
            out.add(n)
        prev = n
    return out


def _action_line_codes(text: str) -> set[str]:
    codes: set[str] = set()
    for rx in (_AL_THEN_TOPICS, _TOPICS_THEN_AL, _C7_THEN_SUBS, _SUBS_THEN_C7):
        for m in rx.finditer(text):
            found = _topics_to_codes(m.group("topics"))
            if rx is _C7_THEN_SUBS or rx is _SUBS_THEN_C7:
                found = {c for c in found if c.startswith("C7.")}
            codes |= found
    for m in _CODE_RUN.finditer(text):
        before = text[max(0, m.start() - 25) : m.start()]
        if _REFERENCE_WORDS.search(before) and not _AL_CONTEXT.search(before):
            continue
        run = m.group(0)
        nums = [(sm.group("sep"), int(sm.group("n"))) for sm in _CODE_IN_RUN.finditer(run)]
        codes |= {f"C{n}" for n in _expand(nums, 1, 11)}
    for m in _LOWER_CODE_AFTER_AL.finditer(text):
        codes.add(f"C{int(m.group('n'))}")
    if any(c.startswith("C7.") for c in codes):
        codes.add("C7")
    return codes


def _sdg_codes(text: str) -> set[str]:
    found: set[int] = set()
    for rx in (_SDG_RE, _GOAL_RE, _TARGET_RE):
        for m in rx.finditer(text):
            nums = [
                (sm.group("sep"), int(sm.group("n"))) for sm in _NUM_IN_LIST.finditer(m.group("nums"))
            ]
            found |= _expand(nums, 1, 17)
    return {str(n) for n in found}


# Whole tokens only ((?<!\S), possessive): "\S+@\S+\.\w+" re-scanned a long token from every position.
_URL_RE = re.compile(r"(?:https?://|www\.)\S++|(?<!\S)[^\s@]++@(?P<domain>\S++)", re.I)
_DOT_WORD = re.compile(r"\.\w")
_WHITESPACE = re.compile(r"\s+")


def _blank_url(m: re.Match[str]) -> str:
    """A URL, or a token with "@" and a dotted part after it (an email), becomes a space."""
    domain = m.group("domain")
    if domain is not None and not _DOT_WORD.search(domain):
        return m.group(0)  # "@handle": no email
    return " "


def find_mentions(text: str) -> Mentions:
    """Find explicit Action Line and SDG mentions in `text` (conservative: precision over recall)."""
    if not text or not isinstance(text, str):
        return Mentions()
    # "%C4%8D" in a URL is no C4. Whitespace runs become one space: the patterns only test for whitespace,
    # and their "\s*" separators would otherwise re-scan a long run of spaces from every position.
    text = _WHITESPACE.sub(" ", _URL_RE.sub(_blank_url, text))
    als = sorted(_action_line_codes(text), key=_AL_ORDER.__getitem__)
    sdgs = sorted(_sdg_codes(text), key=int)
    return Mentions(action_lines=als, sdgs=sdgs, agenda_2030=bool(_AGENDA_RE.search(text)))
