"""Text helpers shared by the readers: decoding bytes, stripping markdown, fuzzy matching of labels."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

_EMPHASIS = [
    # the emphasised span is bounded (and cannot contain its own marker or a newline): unbounded `.+?` made
    # these quadratic on a long line of markers (issue 10, defect 8)
    re.compile(r"\*\*\*([^*\n]{1,500}?)\*\*\*"),
    re.compile(r"\*\*([^*\n]{1,500}?)\*\*"),
    re.compile(r"__([^_\n]{1,500}?)__"),
    re.compile(r"(?<![\w*])\*(?!\s)([^*\n]{1,500}?)(?<!\s)\*(?![\w*])"),
    re.compile(r"(?<![\w_])_(?!\s)([^_\n]{1,500}?)(?<!\s)_(?![\w_])"),
]
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*")
_BLOCKQUOTE = re.compile(r"^\s{0,3}>\s?")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_RULE = re.compile(r"^\s*([-*_=~]\s*){3,}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class DecodeError(ValueError):
    """Raised when bytes are not text in any encoding we accept."""


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode file bytes as UTF-8 (with or without BOM), else CP1252, else Latin-1; reject binary.

    Returns (text, encoding). Binary content (NUL bytes, many control characters) raises DecodeError,
    so garbage is quarantined instead of being read as a document. A file that mixes UTF-8 and CP1252 lines is
    decoded line by line and reported with the encoding `MIXED_ENCODING`.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise DecodeError("file is not valid UTF-16 text") from exc
    if data.count(b"\x00") > max(2, len(data) // 1000):
        raise DecodeError("file is not valid UTF-8/CP1252 text (binary content)")
    data = data.replace(b"\x00", b"")  # a few stray NUL bytes (PDF extraction) are dropped
    text: str | None = None
    encoding = ""
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError:
        text = _decode_mixed(data)
        if text is not None:
            encoding = MIXED_ENCODING
    if text is None:
        for enc in ("cp1252", "latin-1"):
            try:
                text = data.decode(enc)
                encoding = enc
                break
            except UnicodeDecodeError:
                continue
    if text is None:  # pragma: no cover - latin-1 decodes every byte
        raise DecodeError("file is not valid UTF-8/CP1252 text")
    text = fix_mojibake(text)
    n_bad = len(_CONTROL.findall(text)) + sum(1 for ch in text if 0x80 <= ord(ch) <= 0x9F)
    if text and n_bad / len(text) > 0.01:
        raise DecodeError("file is not valid UTF-8/CP1252 text (binary or garbled content)")
    return text, encoding


MIXED_ENCODING = "mixed utf-8/cp1252"


def _decode_mixed(data: bytes) -> str | None:
    """Line by line, UTF-8 first and CP1252 (else Latin-1) for lines that are not UTF-8, when the file mixes
    both (a UTF-8 file edited in a CP1252 editor); None when no line is genuinely UTF-8 (a plain CP1252 file)."""
    lines = data.split(b"\n")
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    out: list[str] = []
    n_utf8 = 0
    for raw in lines:
        try:
            line = raw.decode("utf-8")
            n_utf8 += not raw.isascii()
        except UnicodeDecodeError:
            try:
                line = raw.decode("cp1252")
            except UnicodeDecodeError:
                line = raw.decode("latin-1")
        out.append(line)
    return "\n".join(out) if n_utf8 else None


def is_mixed_encoding(data: bytes) -> bool:
    """True when `data` mixes UTF-8 lines and lines in another encoding (decode_bytes reads it line by line)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_mixed(data.replace(b"\x00", b"")) is not None
    return False


_MOJIBAKE = re.compile("\u00e2\u20ac|\u00c3[\u0080-\u00bf\u2018-\u203a\u0152-\u0178]")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as CP1252 once ("â€“" for "–", "Ã©" for "é"), when the whole
    text round-trips cleanly; otherwise return it unchanged."""
    if not _MOJIBAKE.search(text):
        return text
    try:
        fixed = text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    return fixed if len(_MOJIBAKE.findall(fixed)) < len(_MOJIBAKE.findall(text)) else text


def junk_reason(text: str, encoding: str = "") -> str:
    """Why decoded text is not text at all (random bytes read as characters), or "" when it reads as text.

    Real prose, in any script, is mostly letters separated by spaces; random high bytes decoded as CP1252 or
    Latin-1 are mostly accented letters and symbols with hardly any space. Small texts are never judged.
    """
    sample = text[:20000]
    chars = [ch for ch in sample if not ch.isspace()]
    if len(chars) < 200:
        return ""
    non_ascii = sum(1 for ch in chars if ord(ch) > 0x7F)
    symbols = sum(1 for ch in chars if unicodedata.category(ch)[0] in "SC" or unicodedata.category(ch) == "Co")
    if encoding in {"cp1252", "latin-1"} and non_ascii / len(chars) > 0.3:
        return (f"file content is not readable text: {non_ascii / len(chars):.0%} of its characters are "
                f"accented letters or symbols ({encoding} bytes at random?)")
    if symbols / len(chars) > 0.25:
        return (f"file content is not readable text: {symbols / len(chars):.0%} of its characters are symbols "
                "or control characters (binary data?)")
    return ""


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_emphasis(text: str) -> str:
    """Remove markdown emphasis markers (`**x**`, `_x_`, `*x*`, `__x__`) but keep the words."""
    prev = None
    while prev != text:
        prev = text
        for pattern in _EMPHASIS:
            text = pattern.sub(r"\1", text)
    return text


def strip_markdown_line(line: str) -> str:
    """A line without heading hashes, blockquote marks, emphasis and surrounding whitespace."""
    line = _BLOCKQUOTE.sub("", line)
    line = _HEADING.sub("", line)
    line = strip_emphasis(line).strip()
    # leftovers of unbalanced emphasis at the ends, e.g. "**Organization name" or "name:**"
    return line.strip("*_ ").strip()


def is_rule(line: str) -> bool:
    """A markdown horizontal rule / separator line such as `---` or `* * *`."""
    return bool(_RULE.match(line))


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower-case, accents removed, punctuation dropped, whitespace collapsed: the key for matching."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("\u2019", "'").replace("'", "")
    return " ".join(_WORD.findall(text.casefold()))


def tokens(text: str) -> list[str]:
    return fold(text).split()


def similarity(a: str, b: str, floor: float = 0.0) -> float:
    """Similarity of two labels in [0, 1]: the best of character ratio and word overlap (Dice).

    With `floor`, values that cannot reach it may be returned approximately (cheaper): the costly
    character match is skipped when the word overlap of a long label is far below the floor.
    """
    fa, fb = fold(a), fold(b)
    if not fa or not fb:
        return 0.0
    if fa == fb:
        return 1.0
    ta, tb = set(fa.split()), set(fb.split())
    dice = 2 * len(ta & tb) / (len(ta) + len(tb))
    if floor and dice < floor - 0.25 and min(len(ta), len(tb)) > 4:
        return dice
    if 2 * min(len(fa), len(fb)) / (len(fa) + len(fb)) <= dice:
        return dice  # the character ratio cannot beat the word overlap: skip the costly match
    matcher = SequenceMatcher(None, fa, fb, autojunk=False)
    quick = matcher.quick_ratio()
    if quick <= dice or (floor and quick < floor):
        return dice
    return max(matcher.ratio(), dice)


def prefix_similarity(a: str, b: str) -> float:
    """How well `a` matches the start of `b` (for truncated column headers such as "4. What are ...")."""
    fa, fb = fold(a), fold(b)
    if not fa or not fb or len(fa) > len(fb):
        return 0.0
    return SequenceMatcher(None, fa, fb[: len(fa)], autojunk=False).ratio()


def collapse_ws(text: str) -> str:
    return " ".join(text.split())
