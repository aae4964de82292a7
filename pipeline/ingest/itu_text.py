"""Reader for form exports as text/markdown (the ITU layout): one or many submissions per file.

A line is a heading only when it matches an item of the questionnaire that can come next (by number
and/or fuzzy text similarity), so numbered lists inside answers are never split into questions.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from pipeline.ingest.normalise import parse_date
from pipeline.ingest.questionnaire import Item, Questionnaire
from pipeline.ingest.records import Answer, QuarantineLine, Submission
from pipeline.ingest.textutil import fold, is_rule, similarity, strip_markdown_line

log = logging.getLogger(__name__)

_NUMBERED = re.compile(
    r"^(?P<prefix>(?:q(?:uestion)?|item|no\.?)\s*)?(?P<num>\d{1,3})(?![\d/.,]\d)"
    r"\s*(?P<delim>[.):\-\u2013\u2014\]]|\s|$)\s*(?P<text>.*)$",
    re.IGNORECASE,
)
QUESTION_NUMBERED_MIN = 0.4    # number matches and the line is a question ("...?")
QUESTION_STATEMENT_MIN = 0.7   # number matches but the line does not end with "?" (list items rarely do)
QUESTION_IN_LIST_MIN = 0.85    # the line directly continues a list or paragraph: nearly the question text
QUESTION_ISOLATED_MIN = 0.5    # unnumbered "...?" line between blank lines, where the next question is due
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022\u2013]|\(?\w{1,3}[.)])\s+\S")
QUESTION_RENUMBERED_MIN = 0.85  # number differs: nearly the same text
QUESTION_UNNUMBERED_MIN = 0.8
FIELD_MIN = 0.85
MIN_ITEMS_FOR_FORM = 2


@dataclass
class HeadingHit:
    index: int
    score: float
    inline_value: str | None = None
    consumed: int = 0  # extra lines (after this one) that belong to the heading


@dataclass
class _Draft:
    response_id: str = ""
    date_raw: str = ""
    line_no: int = 0
    values: dict[int, list[str]] = field(default_factory=dict)
    found: list[int] = field(default_factory=list)


def _split_number(line: str) -> tuple[int | None, str, bool]:
    """(number, text after it, has explicit Q/Question prefix) for a heading candidate line."""
    m = _NUMBERED.match(line)
    if not m:
        return None, line, False
    return int(m.group("num")), m.group("text").strip(), bool(m.group("prefix"))


class TextFormParser:
    """Splits the text of an export into submissions using the questionnaire's items as anchors."""

    def __init__(self, questionnaire: Questionnaire, day_first: bool = True) -> None:
        self.q = questionnaire
        self.items = list(questionnaire.items)
        self.marker = questionnaire.marker_regex()
        self.day_first = day_first
        longest = max((len(label) for item in self.items for label in item.labels), default=100)
        self.max_heading_len = int(longest * 2 + 40)

    # ---- heading detection -------------------------------------------------------------------
    def _score(self, item: Item, number: int | None, text: str, has_prefix: bool,
               next_line: str, in_list: bool = False, isolated_next: bool = False) -> HeadingHit | None:
        idx = self.items.index(item)
        if item.kind == "field":
            inline: str | None = None
            sim = item.label_similarity(text, 0.7) if text else 0.0
            if sim < FIELD_MIN and ":" in text:
                left, right = text.split(":", 1)
                lsim = item.label_similarity(left, FIELD_MIN)
                if lsim >= FIELD_MIN:
                    sim, inline = lsim, right.strip()
            if number is not None and number == item.number:
                if not text and has_prefix:
                    return HeadingHit(idx, 0.9)
                if sim >= 0.7:
                    return HeadingHit(idx, sim + 0.3, inline)
                return None
            if sim >= (0.95 if number is not None else FIELD_MIN):
                return HeadingHit(idx, sim, inline)
            return None
        numbered = number is not None and number == item.number
        floor = QUESTION_NUMBERED_MIN if numbered else QUESTION_ISOLATED_MIN
        sim = item.label_similarity(text, floor) if text else 0.0
        if numbered:
            if not text:
                nsim = item.label_similarity(next_line, floor) if next_line else 0.0
                if nsim >= QUESTION_NUMBERED_MIN:
                    return HeadingHit(idx, nsim + 0.3, consumed=1)
                return HeadingHit(idx, 0.8) if has_prefix else None
            split = self._split_inline_answer(item, text)
            if split is not None:
                return HeadingHit(idx, split[0] + 0.3, split[1])
            if in_list:
                threshold = QUESTION_IN_LIST_MIN
            elif text.rstrip(" *_").endswith("?"):
                threshold = QUESTION_NUMBERED_MIN
            else:
                threshold = QUESTION_STATEMENT_MIN
            if sim >= threshold:
                return HeadingHit(idx, sim + 0.3)
            return None
        if number is not None:
            return HeadingHit(idx, sim) if sim >= QUESTION_RENUMBERED_MIN else None
        is_question = text.rstrip(" *_").endswith("?")
        threshold = QUESTION_UNNUMBERED_MIN - (0.05 if is_question else 0.0)
        if is_question and isolated_next:
            # a question on a line of its own, where the next question of the form is expected
            threshold = QUESTION_ISOLATED_MIN
        return HeadingHit(idx, sim) if sim >= threshold else None

    @staticmethod
    def _split_inline_answer(item: Item, text: str) -> tuple[float, str] | None:
        """(similarity, answer) when a numbered heading line goes on after its question mark with the
        answer itself ("4. What ...? We think ..."); form notes in brackets ("(max 300 words)") are not
        answers."""
        cut = text.find("?")
        if cut < 0 or not text[cut + 1:].strip(" *_"):
            return None
        rest = text[cut + 1:].strip(" *_")
        if re.fullmatch(r"[(\[].*[)\]]", rest):
            return None
        sim = item.label_similarity(text[: cut + 1], QUESTION_IN_LIST_MIN)
        return (sim, rest) if sim >= QUESTION_IN_LIST_MIN else None

    def match_heading(self, line: str, pos: int, next_line: str = "", prev_line: str = "",
                      isolated: bool = False) -> tuple[HeadingHit | None, bool]:
        """The item this line is a heading of (searching items after `pos`), and whether it restarts.

        Restart means the line is the form's first item while we are already past it: a new
        submission without a "Response N" line. `prev_line` is the raw line just above: a numbered line
        that directly continues a list needs to match its question almost exactly.
        """
        clean = strip_markdown_line(line)
        if not clean or len(clean) > self.max_heading_len:
            return None, False
        number, text, has_prefix = _split_number(clean)
        if number is None:
            text = clean
        nxt = strip_markdown_line(next_line)
        best: HeadingHit | None = None
        in_list = bool(prev_line.strip()) and bool(_LIST_ITEM.match(strip_markdown_line(prev_line)))
        for idx in range(pos + 1, len(self.items)):
            hit = self._score(self.items[idx], number, text, has_prefix, nxt, in_list,
                              isolated and idx == pos + 1)
            if hit is None:
                continue
            hit.score -= 0.01 * (idx - pos - 1)
            if best is None or hit.score > best.score:
                best = hit
        if best is not None:
            return best, False
        if pos >= 1:
            hit = self._score(self.items[0], number, text, has_prefix, nxt)
            if hit is not None:
                return hit, True
        return None, False

    def marker_match(self, line: str) -> tuple[str, str] | None:
        """(response id, raw date) when the line starts a submission ("Response 83 – 11/02/2025 16:12")."""
        if self.marker is None:
            return None
        clean = strip_markdown_line(line)
        m = self.marker.match(clean)
        if not m:
            return None
        rid = (m.groupdict().get("id") or "").strip().rstrip(".")
        date = (m.groupdict().get("date") or "").strip()
        if date and not parse_date(date, self.day_first):
            return None
        if not date and not any(ch.isdigit() for ch in rid):
            return None
        return rid, date

    # ---- parsing -----------------------------------------------------------------------------
    def parse(self, text: str, source_file: str, stem: str
              ) -> tuple[list[Submission], list[QuarantineLine], int]:
        """Submissions found in `text`, quarantine lines, and how many item headings were recognised."""
        lines = text.split("\n")
        drafts: list[_Draft] = []
        current: _Draft | None = None
        pos = -1
        n_headings = 0
        n_questions = 0
        i = 0
        while i < len(lines):
            line = lines[i]
            marker = self.marker_match(line) if line.strip() else None
            if marker is not None and current is not None and marker[0] == current.response_id \
                    and 0 <= pos < len(self.items) - 1:
                i += 1  # the page header of an export repeated inside the same submission
                continue
            if marker is not None:
                current = _Draft(response_id=marker[0], date_raw=marker[1], line_no=i + 1)
                drafts.append(current)
                pos = -1
                i += 1
                continue
            if line.strip():
                nxt = next((ln for ln in lines[i + 1: i + 4] if ln.strip()), "")
                prev = lines[i - 1] if i else ""
                isolated = not prev.strip() and (i + 1 >= len(lines) or not lines[i + 1].strip())
                hit, restart = self.match_heading(line, pos, nxt, prev, isolated)
                if hit is not None:
                    n_headings += 1
                    n_questions += self.items[hit.index].kind == "question"
                    if current is None or restart:
                        current = _Draft(line_no=i + 1)
                        drafts.append(current)
                    pos = hit.index
                    current.found.append(pos)
                    current.values[pos] = [] if hit.inline_value is None else [hit.inline_value]
                    skip = 0
                    if hit.consumed:
                        # skip the question text that followed a bare "Question 4:" line
                        j = i + 1
                        while j < len(lines) and not lines[j].strip():
                            j += 1
                        skip = j - i
                    i += 1 + skip
                    i = self._skip_continuation(lines, i, self.items[pos])
                    continue
            if current is not None and pos >= 0:
                current.values[pos].append(line)
            i += 1
        # a file is a form export when it has question headings, or submission markers and headings
        has_marker = any(d.response_id for d in drafts)
        is_form = n_questions >= MIN_ITEMS_FOR_FORM or (has_marker and n_headings >= 1)
        return self._finish(drafts, source_file, stem, n_headings if is_form else 0)

    def _skip_continuation(self, lines: list[str], i: int, item: Item) -> int:
        """Skip lines that continue a question heading wrapped over several lines."""
        if item.kind != "question":
            return i
        targets = [fold(label) for label in item.labels]
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines):
            cand = fold(strip_markdown_line(lines[j]))
            if len(cand) >= 12 and any(cand in t and not t.startswith(cand) for t in targets):
                return j + 1
        return i

    def _clean_value(self, item: Item, raw_lines: list[str]) -> str:
        # the form's title line (a repeated page header) is never answer text, wherever it is
        lines = [ln for ln in raw_lines if not self._is_title(ln)]
        # drop separators, section titles and markdown headings at the end (they precede the next item)
        while lines and self._is_trailing_junk(lines[-1]):
            lines.pop()
        # drop lines printed by the form after the question text (e.g. a link)
        if item.trailing_lines:
            targets = [fold(t) for t in item.trailing_lines]
            while lines:
                first = lines[0]
                if not first.strip():
                    lines.pop(0)
                    continue
                folded = fold(first)
                if folded and any(t and (folded == t or (t in folded and len(folded) <= len(t) + 25))
                                  for t in targets):
                    lines.pop(0)
                    continue
                break
        if item.kind == "field":
            # a field value is its first paragraph; anything after a blank line is not the value
            # (e.g. an extra field of the form that the questionnaire does not list)
            paragraph: list[str] = []
            end = len(lines)
            for k, ln in enumerate(lines):
                if ln.strip():
                    paragraph.append(strip_markdown_line(ln))
                elif paragraph:
                    end = k
                    break
            dropped = [ln for ln in lines[end:] if ln.strip()]
            if dropped:
                log.info("field %s: lines after its value were not read: %s", item.role,
                         " | ".join(dropped)[:200])
            return " ".join(paragraph).strip()
        return "\n".join(ln.rstrip() for ln in lines).strip()

    def _is_title(self, line: str) -> bool:
        stripped = line.strip()
        if not stripped or not self.q.title or len(stripped) > 2 * len(self.q.title):
            return False
        return similarity(strip_markdown_line(stripped), self.q.title) >= 0.9

    def _is_trailing_junk(self, line: str) -> bool:
        stripped = line.strip()
        if not stripped or is_rule(stripped):
            return True
        if stripped.startswith("#"):
            return True
        return self.q.is_section_title(strip_markdown_line(stripped), threshold=0.85)

    def _finish(self, drafts: list[_Draft], source_file: str, stem: str, n_headings: int
                ) -> tuple[list[Submission], list[QuarantineLine], int]:
        subs: list[Submission] = []
        quarantine: list[QuarantineLine] = []
        for k, d in enumerate(drafts, start=1):
            record = f"submission {k} (line {d.line_no})"
            values = {self.items[idx].id if self.items[idx].kind == "question" else self.items[idx].role:
                      self._clean_value(self.items[idx], lines) for idx, lines in d.values.items()}
            rid = d.response_id or f"{stem}-{k}"
            sub = Submission(
                response_id=rid, source_file=source_file, source_record=record,
                source_format="itu_text", org_name=values.get("org_name", ""),
                org_type=values.get("org_type", ""), country_raw=values.get("country", ""),
                submitted_raw=d.date_raw, day_first=self.day_first,
            )
            for q in self.q.questions:
                sub.answers.append(Answer(q.id, values.get(q.id, ""), q.number, q.text))
            if not sub.has_content():
                quarantine.append(QuarantineLine(
                    source_file, record, "submission has no organisation name and no answers",
                    f"Response {d.response_id}" if d.response_id else ""))
                continue
            missing = [q.id for q in self.q.questions if q.id not in values]
            if missing:
                log.info("%s %s: questions not found (kept as empty answers): %s",
                         source_file, record, ", ".join(missing))
            subs.append(sub)
        return subs, quarantine, n_headings
