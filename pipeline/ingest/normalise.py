"""Normalisation of respondent metadata: country names and UN M49 regions, stakeholder groups, dates."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipeline import config
from pipeline.ingest.textutil import collapse_ws, fold, strip_markdown_line

GEO_FILE = config.RESOURCES_DIR / "geo" / "countries.csv"
STAKEHOLDER_FILE = config.RESOURCES_DIR / "stakeholders.yaml"
NOT_GIVEN = "not given"  # no organisation type was written (or "N/A", "unknown"): kept apart from a stated "other"
GROUPS = (
    "government", "private sector", "civil society", "academia", "technical community",
    "international organisation", "individual", "other", NOT_GIVEN,
)


@dataclass(frozen=True)
class Country:
    name: str
    iso2: str
    iso3: str
    m49: str
    region: str
    subregion: str


class CountryIndex:
    """Looks up a country by name, alias, ISO code (case/accents/punctuation-insensitive)."""

    def __init__(self, path: Path = GEO_FILE) -> None:
        self.path = path
        self.by_key: dict[str, Country] = {}
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                country = Country(row["name"], row["iso2"], row["iso3"], row["m49"], row["region"],
                                  row["subregion"])
                keys = [row["name"], row["iso3"], *row["aliases"].split("|")]
                for key in keys:
                    if key.strip():
                        self.by_key.setdefault(fold(key), country)
                # two-letter codes only in upper case, so "in" or "no" in prose never match
                self.by_key.setdefault("iso2:" + row["iso2"].upper(), country)

    def lookup(self, raw: str) -> Country | None:
        """The country named by `raw`, or None. Tries the whole value, then "X, Y"/"X (Y)" parts."""
        value = collapse_ws(strip_markdown_line(raw or ""))
        if not value:
            return None
        if re.fullmatch(r"[A-Z]{2}", value):
            hit = self.by_key.get("iso2:" + value)
            if hit:
                return hit
        key = fold(value)
        if key in self.by_key:
            return self.by_key[key]
        key2 = fold(re.sub(r"^the\s+", "", value, flags=re.I))
        if key2 in self.by_key:
            return self.by_key[key2]
        # "Geneva, Switzerland", "Nairobi (Kenya)", "Kenya / Global": try the parts, last first
        parts = [p for p in re.split(r"[,;/()|]|\s-\s", value) if p.strip()]
        if len(parts) > 1:
            for part in reversed(parts):
                hit = self.by_key.get(fold(part))
                if hit:
                    return hit
        return None


class StakeholderMapper:
    """Maps raw organisation types to the stakeholder groups using resources/stakeholders.yaml: the 7 named
    groups, "other" for a type that is given but fits none, and "not given" when no type was given (an empty
    value, or one of the "not given" aliases such as N/A), so missing metadata never inflates "other"."""

    def __init__(self, path: Path = STAKEHOLDER_FILE) -> None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        self.aliases: dict[str, str] = {}
        self.keywords: list[tuple[re.Pattern[str], str]] = []
        for entry in data.get("groups", []):
            group = str(entry["group"])
            if group not in GROUPS:
                raise ValueError(f"{path}: unknown stakeholder group {group!r}")
            for alias in entry.get("aliases", []) or []:
                self.aliases.setdefault(fold(str(alias)), group)
            for kw in entry.get("keywords", []) or []:
                pattern = re.compile(r"\b" + re.escape(fold(str(kw))))
                self.keywords.append((pattern, group))

    def group(self, raw: str) -> str:
        key = fold(strip_markdown_line(raw or ""))
        if not key:
            return NOT_GIVEN
        if key in self.aliases:
            return self.aliases[key]
        for pattern, group in self.keywords:
            if pattern.search(key):
                return group
        return "other"


_AREAS = {
    "africa": ("Africa", ""), "northern africa": ("Africa", "Northern Africa"),
    "north africa": ("Africa", "Northern Africa"), "sub saharan africa": ("Africa", "Sub-Saharan Africa"),
    "americas": ("Americas", ""), "latin america": ("Americas", "Latin America and the Caribbean"),
    "latin america and the caribbean": ("Americas", "Latin America and the Caribbean"),
    "caribbean": ("Americas", "Latin America and the Caribbean"),
    "north america": ("Americas", "Northern America"), "northern america": ("Americas", "Northern America"),
    "asia": ("Asia", ""), "asia pacific": ("", ""), "middle east": ("Asia", "Western Asia"),
    "western asia": ("Asia", "Western Asia"), "southern asia": ("Asia", "Southern Asia"),
    "south asia": ("Asia", "Southern Asia"), "eastern asia": ("Asia", "Eastern Asia"),
    "east asia": ("Asia", "Eastern Asia"), "south eastern asia": ("Asia", "South-eastern Asia"),
    "southeast asia": ("Asia", "South-eastern Asia"), "central asia": ("Asia", "Central Asia"),
    "europe": ("Europe", ""), "european union": ("Europe", ""), "eu": ("Europe", ""),
    "eastern europe": ("Europe", "Eastern Europe"), "western europe": ("Europe", "Western Europe"),
    "northern europe": ("Europe", "Northern Europe"), "southern europe": ("Europe", "Southern Europe"),
    "oceania": ("Oceania", ""), "pacific": ("Oceania", ""), "pacific islands": ("Oceania", ""),
}


def region_of_area(raw: str) -> tuple[str, str]:
    """(region, subregion) when `raw` names a world region rather than a country, e.g. "Latin America"."""
    return _AREAS.get(fold(raw), ("", ""))


@lru_cache(maxsize=1)
def country_index() -> CountryIndex:
    return CountryIndex()


@lru_cache(maxsize=1)
def stakeholder_mapper() -> StakeholderMapper:
    return StakeholderMapper()


def country_fields(raw: str) -> dict[str, str]:
    """country, country_raw, region, subregion for a raw country value ("" when unknown)."""
    raw_clean = collapse_ws(strip_markdown_line(raw or ""))
    hit = country_index().lookup(raw_clean)
    if hit is None:
        region, subregion = region_of_area(raw_clean)
        return {"country": "", "country_raw": raw_clean, "region": region, "subregion": subregion}
    return {"country": hit.name, "country_raw": raw_clean, "region": hit.region,
            "subregion": hit.subregion}


_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_NUMERIC_DATE = re.compile(
    r"^(?P<a>\d{1,4})[./-](?P<b>\d{1,2})[./-](?P<c>\d{1,4})"
    r"(?:[ T,]+(?P<H>\d{1,2})[:h.](?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\.\d+)?\s*(?P<ampm>[ap]\.?m\.?)?)?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT|CET|CEST|EDT|EST)?$",
    re.IGNORECASE,
)


def parse_date(raw: Any, day_first: bool = True) -> str:
    """ISO 8601 "YYYY-MM-DDTHH:MM:SS" (or "YYYY-MM-DD" without a time) for a date string; "" if unknown.

    Numeric dates are read day first when `day_first` (the ITU export writes 11/02/2025 for 11 Feb),
    unless the first number cannot be a day... the year-first ISO form is always year-month-day.
    """
    if raw is None:
        return ""
    if isinstance(raw, datetime):
        return raw.strftime("%Y-%m-%dT%H:%M:%S")
    text = collapse_ws(strip_markdown_line(str(raw)))
    if not text or text.lower() in {"nan", "nat", "none", "n/a"}:
        return ""
    m = _NUMERIC_DATE.match(text)
    if m:
        a, b, c = m.group("a"), m.group("b"), m.group("c")
        if len(a) == 4:
            year, month, day = int(a), int(b), int(c)
        else:
            year = int(c) + (2000 if len(c) == 2 else 0)
            first, second = int(a), int(b)
            if day_first:
                day, month = (first, second) if first <= 31 and second <= 12 else (second, first)
            else:
                month, day = (first, second) if first <= 12 else (second, first)
            if len(c) not in (2, 4):
                return ""
        hour = int(m.group("H")) if m.group("H") else None
        minute = int(m.group("M")) if m.group("M") else 0
        second_ = int(m.group("S")) if m.group("S") else 0
        ampm = (m.group("ampm") or "").lower().replace(".", "")
        if hour is not None and ampm:
            hour = hour % 12 + (12 if ampm == "pm" else 0)
        try:
            dt = datetime(year, month, day, hour or 0, minute, second_)
        except ValueError:
            return ""
        return dt.strftime("%Y-%m-%dT%H:%M:%S") if hour is not None else dt.strftime("%Y-%m-%d")
    if not re.search(r"\b\d{4}\b", text):
        return ""  # free text such as "May" or "soon" is not a date
    try:
        from dateutil import parser as dparser

        has_time = bool(re.search(r"\d{1,2}:\d{2}", text))
        dt = dparser.parse(text, dayfirst=day_first, fuzzy=False)
        return dt.strftime("%Y-%m-%dT%H:%M:%S") if has_time else dt.strftime("%Y-%m-%d")
    except (ValueError, OverflowError, TypeError):
        return ""
