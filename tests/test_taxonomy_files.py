"""Validate the taxonomy data files and the hand-written training CSVs the tagger depends on.

The tagger reads these files as-is, so a typo in a code, a label without examples or a broken split would
silently degrade training; these tests catch that at commit time. Files written by other engineers
(`sdgs.yaml`, `examples_sdgs.csv`) are skipped until they exist, then checked like the others.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipeline import config

TAXONOMY_DIR = config.PROJECT_ROOT / "pipeline" / "resources" / "taxonomy"
TRAINING_DIR = config.PROJECT_ROOT / "data" / "training"
AL_YAML = TAXONOMY_DIR / "action_lines.yaml"
SDG_YAML = TAXONOMY_DIR / "sdgs.yaml"
MATRIX_CSV = TAXONOMY_DIR / "wsis_sdg_matrix.csv"
AL_EXAMPLES = TRAINING_DIR / "examples_action_lines.csv"
SDG_EXAMPLES = TRAINING_DIR / "examples_sdgs.csv"

C7_SUBAREAS = [
    "C7.e-government",
    "C7.e-business",
    "C7.e-learning",
    "C7.e-health",
    "C7.e-employment",
    "C7.e-environment",
    "C7.e-agriculture",
    "C7.e-science",
]
AL_CODES = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", *C7_SUBAREAS, "C8", "C9", "C10", "C11"]
SDG_CODES = [str(i) for i in range(1, 18)]
EXAMPLE_COLUMNS = ["id", "text", "action_lines", "sdgs", "register", "split"]
REGISTERS = {
    "government",
    "private sector",
    "civil society",
    "academia",
    "technical community",
    "international organisation",
    "research",
}
MIN_EXAMPLES = 25
MIN_HELDOUT = 5
MIN_KEYWORDS = 20


def _load_yaml(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, list), f"{path.name} must be a YAML list"
    return data


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _codes(cell: str) -> list[str]:
    return [c for c in cell.split(";")] if cell else []


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    return path


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


def _check_label_entries(entries: list[dict], expected: list[str], kind: str) -> None:
    codes = [str(e.get("code")) for e in entries]
    assert codes == expected, f"{kind} codes differ from the fixed list (order matters for reports)"
    for entry in entries:
        code = entry["code"]
        assert isinstance(entry.get("title"), str) and entry["title"].strip(), f"{code}: title"
        description = entry.get("description")
        assert isinstance(description, str) and _sentences(description) >= 3, f"{code}: description too short"
        keywords = entry.get("keywords")
        assert isinstance(keywords, list) and len(keywords) >= MIN_KEYWORDS, f"{code}: < {MIN_KEYWORDS} keywords"
        assert all(isinstance(k, str) and k.strip() == k and k for k in keywords), f"{code}: blank keyword"
        assert all(k == k.lower() for k in keywords), f"{code}: keywords must be lower-case"
        dupes = [k for k, n in Counter(keywords).items() if n > 1]
        assert not dupes, f"{code}: duplicate keywords {dupes}"


# --- action_lines.yaml -------------------------------------------------------------------------------------


def test_action_lines_yaml_codes_fields_and_keywords() -> None:
    entries = _load_yaml(AL_YAML)
    _check_label_entries(entries, AL_CODES, "Action Line")
    for entry in entries:
        expected_parent = "C7" if entry["code"].startswith("C7.") else None
        assert entry.get("parent") == expected_parent, f"{entry['code']}: parent"
        assert isinstance(entry.get("facilitator"), str) and entry["facilitator"].strip()
        assert _sentences(entry["description"]) <= 6, f"{entry['code']}: description longer than 6 sentences"


def test_action_line_keywords_are_specific_enough() -> None:
    """One-letter or two-letter keywords would match inside words; allow only known acronyms."""
    allowed_short = {"5g", "4g", "ai", "hpc"}
    for entry in _load_yaml(AL_YAML):
        short = [k for k in entry["keywords"] if len(k) <= 2 and k not in allowed_short]
        assert not short, f"{entry['code']}: too short keywords {short}"


@pytest.mark.shared
def test_action_line_titles_match_facts(shared_dir: Path) -> None:
    facts = (shared_dir / "taxonomy" / "facts.md").read_text(encoding="utf-8")
    for entry in _load_yaml(AL_YAML):
        if entry["parent"] is None:
            assert entry["title"] in facts, f"{entry['code']}: title not the official wording in facts.md"
        else:
            assert entry["title"].lower() in facts.lower(), f"{entry['code']}: sub-area name not in facts.md"


# --- sdgs.yaml ---------------------------------------------------------------------------------------------


def test_sdgs_yaml_codes_fields_and_keywords() -> None:
    entries = _load_yaml(_require(SDG_YAML))
    _check_label_entries(entries, SDG_CODES, "SDG")
    for entry in entries:
        assert isinstance(entry["code"], str), "SDG codes must be strings in YAML ('1', not 1)"
        assert isinstance(entry.get("long_title"), str) and entry["long_title"].strip(), f"SDG {entry['code']}"


# --- wsis_sdg_matrix.csv -----------------------------------------------------------------------------------


def _matrix() -> dict[str, set[str]]:
    header, rows = _read_rows(MATRIX_CSV)
    assert header == ["action_line", "sdg"]
    pairs = [(r["action_line"], r["sdg"]) for r in rows]
    assert len(pairs) == len(set(pairs)), "duplicate matrix rows"
    out: dict[str, set[str]] = {}
    for al, sdg in pairs:
        assert al in AL_CODES, f"unknown Action Line {al!r}"
        assert sdg in SDG_CODES, f"unknown SDG {sdg!r}"
        out.setdefault(al, set()).add(sdg)
    return out


def test_matrix_codes_valid_and_c7_is_union_of_subareas() -> None:
    matrix = _matrix()
    assert set(matrix) == set(AL_CODES), "every Action Line needs at least one SDG in the matrix"
    union = set().union(*(matrix[c] for c in C7_SUBAREAS))
    assert matrix["C7"] == union
    assert matrix["C11"] == {"17"}
    assert matrix["C7.e-learning"] == {"4"}


@pytest.mark.shared
def test_matrix_matches_facts_table(shared_dir: Path) -> None:
    """Transcription check against facts.md section B (goal level)."""
    facts = (shared_dir / "taxonomy" / "facts.md").read_text(encoding="utf-8")
    section = facts.split("## B.")[1].split("## C.")[0]
    expected: dict[str, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*(C\d+)(?:\s+(e-[a-z]+))?\s*\|\s*([\d,\s]+)\|", line)
        if m:
            code = f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1)
            expected[code] = {s.strip() for s in m.group(3).split(",") if s.strip()}
    assert len(expected) == 18, "facts.md table B not parsed"
    matrix = _matrix()
    for code, sdgs in expected.items():
        assert matrix[code] == sdgs, f"{code}: matrix {sorted(matrix[code])} != facts {sorted(sdgs)}"


# --- training examples -------------------------------------------------------------------------------------


def _check_examples(path: Path, id_prefix: str) -> list[dict[str, str]]:
    header, rows = _read_rows(path)
    assert header == EXAMPLE_COLUMNS
    assert rows
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert all(re.fullmatch(rf"{id_prefix}-\d{{4,}}", i) for i in ids), "ids must look like prefix-0001"
    for r in rows:
        rid = r["id"]
        text = r["text"]
        assert text and text == text.strip(), f"{rid}: empty or padded text"
        assert text[0] not in "=+-@", f"{rid}: text would be read as a spreadsheet formula"
        assert not re.search(r"\S+@\S+\.\w+|https?://", text), f"{rid}: e-mail or URL in an example"
        for col, valid in (("action_lines", AL_CODES), ("sdgs", SDG_CODES)):
            codes = _codes(r[col])
            assert " " not in r[col], f"{rid}: spaces in {col}"
            assert all(c in valid for c in codes), f"{rid}: invalid {col} {r[col]!r}"
            assert len(codes) == len(set(codes)), f"{rid}: repeated code in {col}"
        assert r["register"] in REGISTERS, f"{rid}: register {r['register']!r}"
        assert r["split"] in {"train", "heldout"}, f"{rid}: split {r['split']!r}"
    norm = Counter(re.sub(r"\W+", " ", r["text"].lower()).strip() for r in rows)
    dupes = [t for t, n in norm.items() if n > 1]
    assert not dupes, f"duplicate texts: {dupes[:3]}"
    heldout_share = sum(r["split"] == "heldout" for r in rows) / len(rows)
    assert 0.15 <= heldout_share <= 0.30, f"held-out share {heldout_share:.2f}"
    return rows


def _per_label_counts(rows: list[dict[str, str]], col: str) -> tuple[Counter[str], Counter[str]]:
    total: Counter[str] = Counter()
    heldout: Counter[str] = Counter()
    for r in rows:
        for code in _codes(r[col]):
            total[code] += 1
            if r["split"] == "heldout":
                heldout[code] += 1
    return total, heldout


def test_action_line_examples_valid_and_cover_every_label() -> None:
    rows = _check_examples(AL_EXAMPLES, "al")
    total, heldout = _per_label_counts(rows, "action_lines")
    for code in AL_CODES:
        assert total[code] >= MIN_EXAMPLES, f"{code}: {total[code]} examples"
        assert heldout[code] >= MIN_HELDOUT, f"{code}: {heldout[code]} held-out examples"
    negatives = [r for r in rows if not r["action_lines"]]
    assert len(negatives) >= 50, "too few examples without an Action Line"
    assert sum(";" in r["action_lines"] for r in rows) >= 50, "too few multi-label examples"
    assert len({r["register"] for r in rows}) >= 6


def test_action_line_split_follows_documented_rule() -> None:
    """README rule: within each primary-label group, in id order, every 5th row (k % 5 == 4) is held out."""
    _, rows = _read_rows(AL_EXAMPLES)
    seen: Counter[str] = Counter()
    for r in sorted(rows, key=lambda r: int(r["id"].split("-")[1])):
        primary = _codes(r["action_lines"])[0] if r["action_lines"] else "none"
        expected = "heldout" if seen[primary] % 5 == 4 else "train"
        seen[primary] += 1
        assert r["split"] == expected, f"{r['id']}: split {r['split']} but the rule says {expected}"


def test_sdg_examples_valid_and_cover_every_goal() -> None:
    rows = _check_examples(_require(SDG_EXAMPLES), "sdg")
    total, heldout = _per_label_counts(rows, "sdgs")
    for code in SDG_CODES:
        assert total[code] >= MIN_EXAMPLES, f"SDG {code}: {total[code]} examples"
        assert heldout[code] >= MIN_HELDOUT, f"SDG {code}: {heldout[code]} held-out examples"


def test_no_text_shared_between_training_files() -> None:
    _require(SDG_EXAMPLES)
    _, al = _read_rows(AL_EXAMPLES)
    _, sdg = _read_rows(SDG_EXAMPLES)
    common = {r["text"].lower() for r in al} & {r["text"].lower() for r in sdg}
    assert not common, f"texts in both files: {sorted(common)[:3]}"


def _shingles(text: str, n: int = 10) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.shared
def test_examples_are_not_copied_from_real_corpora(shared_dir: Path) -> None:
    """No example may share a 10-word run with the real submissions (text files) in ../shared."""
    ours: dict[tuple[str, ...], str] = {}
    for path in (AL_EXAMPLES, SDG_EXAMPLES):
        if path.exists():
            for r in _read_rows(path)[1]:
                for sh in _shingles(r["text"]):
                    ours[sh] = r["id"]
    sources = sorted((shared_dir / "corpora").rglob("*.txt")) + sorted((shared_dir / "seed").rglob("*.txt"))
    assert sources
    hits: list[str] = []
    for src in sources:
        for sh in _shingles(src.read_text(encoding="utf-8", errors="replace")) & ours.keys():
            hits.append(f"{ours[sh]} ~ {src.name}: {' '.join(sh)}")
    assert not hits, hits[:5]
