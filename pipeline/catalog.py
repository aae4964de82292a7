"""The one artefact catalog and the stage graph derived from it.

Every file of a batch folder is an `Artefact` (name -> relative path, kind, required columns with dtypes); every
stage is a `Stage` that reads and writes catalog names (a Kedro-style node; the runner binds each to its
`pipeline.<stage>.stage.run`). The graph, the run order and each stage's code fingerprint are derived, never
declared: an edge goes from the writer of an artefact to each stage that reads it, and a stage's code is its
module plus every `pipeline.*` module it imports (transitively, lazy imports included) and every
`RESOURCES_DIR / "..."` file those modules name. `tests/test_catalog.py` proves that the reads and writes
declared here are exactly what each stage opens and writes on the sample batch.

`python -m pipeline.catalog --markdown` prints the catalog and the graph for docs/ARCHITECTURE.md; `--code` what
each stage's code fingerprint covers.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = "pipeline"
PACKAGE_DIR = Path(__file__).resolve().parent

# dtype families of a column (pyarrow types are mapped onto them when an artefact is checked)
STRING, INT, FLOAT, BOOL, STRINGS = "string", "int64", "float64", "bool", "list[string]"


@dataclass(frozen=True)
class Artefact:
    """One file (or folder) of a batch: where it lives, what it is, and the columns later stages rely on."""

    name: str
    path: str
    kind: str  # parquet | npz | csv | dir
    columns: tuple[tuple[str, str], ...] = ()  # (column or array, dtype family), the required contract
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


@dataclass(frozen=True)
class Stage:
    """A node: the catalog names it reads and writes; optional ones may be absent (read when present)."""

    name: str
    module: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    optional_reads: tuple[str, ...] = ()
    optional_writes: tuple[str, ...] = ()  # written only in some runs (e.g. the edit log with an edits file)
    params: tuple[str, ...] = ()  # params.yaml sections in the cache key (`seed` always)
    external: str = ""  # what the stage reads from outside the batch folder (hashed by the runner)

    @property
    def all_reads(self) -> tuple[str, ...]:
        return self.reads + self.optional_reads

    @property
    def all_writes(self) -> tuple[str, ...]:
        return self.writes + self.optional_writes


def _cols(spec: str, dtype: str = STRING) -> tuple[tuple[str, str], ...]:
    """'a b:int64 c' -> (("a", dtype), ("b", "int64"), ("c", dtype))."""
    out = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        out.append((name, kind or dtype))
    return tuple(out)


ANSWERS_COLS = _cols(
    "response_id question_id question_number:int64 question_text answer org_name org_type stakeholder_group country "
    "country_raw region subregion submitted_at source_file source_record source_format is_document:bool "
    "submission_group is_current:bool superseded_by superseded_reason ingest_flags"
)
CLEAN_COLS = ANSWERS_COLS + _cols(
    "answer_id text_clean text_redacted is_nonanswer:bool nonanswer_reason language dup_group dup_group_size:int64 "
    "dup_kind keyphrases:list[string] entities:list[string] mentions_action_lines:list[string] "
    "mentions_sdgs:list[string] n_words:int64 n_segments:int64"
)

ARTEFACTS: tuple[Artefact, ...] = (
    Artefact("answers", "answers.parquet", "parquet", ANSWERS_COLS, "one row per submission x question"),
    Artefact("quarantine", "quarantine.csv", "csv", _cols("source_file record reason excerpt"),
             "records ingest could not read, with the reason"),
    Artefact("answers_clean", "answers_clean.parquet", "parquet", CLEAN_COLS,
             "answers + normalised/redacted text, non-answers, language, duplicates, keyphrases, mentions"),
    Artefact("segments", "segments.parquet", "parquet", _cols(
        "segment_id answer_id response_id question_id seg_index:int64 start:int64 end:int64 text text_redacted "
        "n_words:int64 is_nonanswer:bool is_boilerplate:bool boilerplate_kind"),
        "passages of bounded length within an answer"),
    Artefact("embeddings", "embeddings.npz", "npz", _cols(
        "answer_ids answer_vectors:float32 segment_ids segment_vectors:float32 model_id"),
        "unit-norm vectors of answers, segments and the tag stage's sentence passages (sentence_owner, "
        "sentence_digests, sentence_vectors)"),
    Artefact("themes", "themes.parquet", "parquet", _cols(
        "theme_id scope label keywords size:int64 n_segments:int64 n_respondents:int64 origin quotes"),
        "themes per question and across questions"),
    Artefact("theme_assignments", "theme_assignments.parquet", "parquet",
             _cols("answer_id response_id question_id themes"), "themes of each answer (+ score_<theme> columns)"),
    Artefact("segment_assignments", "segment_assignments.parquet", "parquet",
             _cols("segment_id answer_id question_id theme_id score:float64"), "theme of each passage"),
    Artefact("theme_by_question", "theme_by_question.parquet", "parquet", _cols(
        "theme_id question_id label origin cross_theme n_answers:int64 n_segments:int64 n_respondents:int64 "
        "share:float64 n_questions:int64"), "themes linked across questions"),
    Artefact("theme_edits", "theme_edits.parquet", "parquet", (), "the analyst's edits and whether each applied"),
    Artefact("theme_stance", "theme_stance.parquet", "parquet", _cols(
        "answer_id response_id question_id theme_id stance confidence:float64 stance_target target_kind"),
        "stance per answer and theme"),
    Artefact("tags", "tags.parquet", "parquet", _cols("answer_id response_id question_id action_lines sdgs"),
             "Action Lines and SDGs per answer (+ score_<label> columns)"),
    Artefact("tag_consistency", "tag_consistency.parquet", "parquet", _cols(
        "answer_id response_id question_id action_lines sdgs unlinked_pairs sdgs_without_action_line "
        "action_lines_without_sdg n_issues:int64"), "tags the WSIS-SDG matrix does not link"),
    Artefact("report", "report", "dir", (), "CSV tables, report.xlsx/.md/.html, run_manifest.json"),
)

# the report reads every artefact it finds and leaves out the tables whose artefact is absent
REPORT_READS = ("quarantine", "answers_clean", "segments", "themes", "theme_assignments", "segment_assignments",
                "theme_by_question", "tags", "tag_consistency", "embeddings", "theme_edits", "theme_stance")

STAGES: tuple[Stage, ...] = (
    Stage("ingest", "pipeline.ingest.stage", writes=("answers", "quarantine"), params=("ingest",),
          external="the input files, the questionnaire and the corpus mapping"),
    Stage("clean", "pipeline.clean.stage", reads=("answers",), writes=("answers_clean", "segments"),
          params=("clean",)),
    Stage("embed", "pipeline.embed.stage", reads=("answers_clean",), optional_reads=("segments",),
          writes=("embeddings",),
          params=("embed", "tag.sentence_scoring", "tag.sentence_scoring_max_answers", "tag.sentence_max_words"),
          external="the embedding cache (content-addressed)"),
    Stage("themes", "pipeline.themes.stage", reads=("answers_clean", "segments", "embeddings"),
          writes=("themes", "theme_assignments", "segment_assignments", "theme_by_question"),
          optional_writes=("theme_edits",), params=("themes", "embed"),
          external="the coding frame, coded examples and edits file when given"),
    Stage("stance", "pipeline.stance.stage", reads=("answers_clean", "theme_assignments", "themes"),
          optional_reads=("embeddings",), writes=("theme_stance",), params=("stance",),
          external="models/stance"),
    Stage("tag", "pipeline.tagger.stage", reads=("answers_clean",), optional_reads=("segments", "embeddings"),
          writes=("tags", "tag_consistency"), params=("tag", "embed"), external="the tagger version in use"),
    Stage("report", "pipeline.report.stage", reads=("answers",), optional_reads=REPORT_READS, writes=("report",),
          params=("report",), external="the run manifest (provenance, ingest counts, fallbacks)"),
)

BY_NAME: dict[str, Artefact] = {a.name: a for a in ARTEFACTS}
BY_PATH: dict[str, Artefact] = {a.path: a for a in ARTEFACTS}


class GraphError(ValueError):
    """The stage graph is not a DAG, an artefact has two writers, or a stage names an unknown artefact."""


def path_of(name: str) -> str:
    return BY_NAME[name].path


def artefact_for(relative: str) -> Artefact | None:
    """The catalog entry a path inside the batch folder belongs to (a file of a 'dir' artefact included)."""
    first = relative.replace("\\", "/").split("/", 1)[0]
    return BY_PATH.get(first)


def writers(stages: tuple[Stage, ...] = STAGES) -> dict[str, str]:
    """artefact -> the one stage that writes it; raises GraphError on two writers or unknown names."""
    out: dict[str, str] = {}
    for stage in stages:
        for name in (*stage.all_reads, *stage.all_writes):
            if name not in BY_NAME:
                raise GraphError(f"stage {stage.name}: unknown artefact {name!r} (not in the catalog)")
        for name in stage.all_writes:
            if name in out:
                raise GraphError(f"artefact {name!r} has two writers: {out[name]} and {stage.name}")
            out[name] = stage.name
    return out


def edges(stages: tuple[Stage, ...] = STAGES) -> list[tuple[str, str, str]]:
    """(writer, reader, artefact) for every artefact a stage reads that another stage writes."""
    by = writers(stages)
    return [(by[a], s.name, a) for s in stages for a in s.all_reads if a in by and by[a] != s.name]


def topological_order(stages: tuple[Stage, ...] = STAGES) -> list[Stage]:
    """Stages in dependency order; among ready stages the one declared first (Kahn's algorithm)."""
    index = {s.name: i for i, s in enumerate(stages)}
    needs: dict[str, set[str]] = {s.name: set() for s in stages}
    for writer, reader, _ in edges(stages):
        needs[reader].add(writer)
    done: list[str] = []
    while len(done) < len(stages):
        ready = [n for n in needs if n not in done and needs[n] <= set(done)]
        if not ready:
            left = sorted(set(needs) - set(done), key=index.__getitem__)
            raise GraphError(f"the stage graph has a cycle among: {', '.join(left)}")
        done.append(min(ready, key=index.__getitem__))
    return [stages[index[n]] for n in done]


# --------------------------------------------------------------------------------------------- code fingerprint
@lru_cache(maxsize=2048)
def _module_file(module: str) -> Path | None:
    """The source file of a `pipeline.*` module or package, None when it is not one (cached per process:
    a name imported by many modules is looked up once)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of a (possibly relative) `from ... import`."""
    if level == 0:
        return module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


_RESOURCE = re.compile(r"""RESOURCES_DIR\s*/\s*["']([^"']+)["']""")


_IMPORT = re.compile(r"^[ \t]*((?:from[ \t]+[\w.]+[ \t]+import\b|import[ \t]+[\w.]).*)$", re.M)


def _statements(source: str) -> list[str]:
    """The import statements of a module, top-level and inside functions, as dedented source: parsing only
    these (not the whole file) keeps fingerprinting all stages well under 0.2 s."""
    out: list[str] = []
    for match in _IMPORT.finditer(source):
        stmt = [match.group(1).strip()]
        pos = match.end()
        while stmt[-1].endswith("\\") or "".join(stmt).count("(") > "".join(stmt).count(")"):
            nxt = source.find("\n", pos + 1)
            line = source[pos + 1: nxt if nxt >= 0 else len(source)]
            if not line and nxt < 0:
                break
            stmt.append(line.strip())
            pos = nxt if nxt >= 0 else len(source)
        out.append("\n".join(stmt))
    return out


@lru_cache(maxsize=512)
def _scan(path: Path, mtime_ns: int, module: str) -> tuple[frozenset[str], frozenset[str]]:
    """(pipeline modules imported anywhere in the file, resource names it joins onto RESOURCES_DIR)."""
    source = path.read_text(encoding="utf-8")
    is_package = path.name == "__init__.py"
    imports: set[str] = set()
    for text in _statements(source):
        try:
            nodes = ast.parse(text).body
        except SyntaxError:  # a docstring line that starts with "from ... import": not code
            continue
        for node in nodes:
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node.level, node.module)
                imports.add(target)
                imports.update(f"{target}.{alias.name}" for alias in node.names)  # a submodule, when one
    resources = set(_RESOURCE.findall(source))
    return frozenset(i for i in imports if i.split(".")[0] == PACKAGE), frozenset(resources)


@lru_cache(maxsize=2048)
def _located(module: str) -> tuple[str, tuple[str, ...], Path | None, str]:
    """(module, its parent packages, its source file, that file relative to pipeline/); cached per process."""
    parts = module.split(".")
    path = _module_file(module)
    rel = path.relative_to(PACKAGE_DIR).as_posix() if path is not None else ""
    return module, tuple(".".join(parts[:i]) for i in range(1, len(parts))), path, rel


def code_files(module: str) -> list[str]:
    """Paths (relative to pipeline/) of the module, every `pipeline.*` module it imports transitively (with
    their parent packages, which Python runs first) and the resource files and folders they name."""
    seen: set[str] = {module}
    files: set[str] = set()
    resources: set[str] = set()
    todo = [module]
    while todo:
        name, parents, path, rel = _located(todo.pop())
        new = {p for p in parents if p not in seen}
        if path is not None:
            files.add(rel)
            found, named = _scan(path, os.stat(path).st_mtime_ns, name)
            new |= found - seen
            resources |= named
        seen |= new
        todo.extend(new)
    shipped = [r for r in resources if (PACKAGE_DIR / "resources" / r).exists()]  # not a docstring's example
    return sorted(files) + sorted(f"resources/{r}" for r in shipped)


def stage_code(stage: Stage) -> tuple[str, ...]:
    """What a stage's code fingerprint covers (see `code_files`)."""
    return tuple(code_files(stage.module))


# ------------------------------------------------------------------------------------------------ documentation
def markdown() -> str:
    """The catalog and the derived graph as Markdown (the 'Catalog and graph' section of ARCHITECTURE.md)."""
    lines = ["| artefact | path | kind | written by | read by | required columns (dtype) |",
             "|---|---|---|---|---|---|"]
    by = writers()
    for a in ARTEFACTS:
        readers = [s.name + ("?" if a.name in s.optional_reads else "") for s in STAGES if a.name in s.all_reads]
        writer = by.get(a.name, "")
        if any(a.name in s.optional_writes for s in STAGES):
            writer += "?"
        cols = ", ".join(f"{c} ({t})" if t != STRING else c for c, t in a.columns) or "-"
        lines.append(f"| {a.name} | `{a.path}` | {a.kind} | {writer} | {', '.join(readers) or '-'} | {cols} |")
    lines += ["", "`?` = optional (read when present / written only in some runs); columns without a dtype are "
              "strings.", "", "Derived graph (run order; writer -> reader: artefacts):", "```"]
    order = topological_order()
    lines.append(" -> ".join(s.name for s in order))
    grouped: dict[tuple[str, str], list[str]] = {}
    for writer, reader, art in edges():
        grouped.setdefault((writer, reader), []).append(art)
    rank = {s.name: i for i, s in enumerate(order)}
    for (writer, reader), arts in sorted(grouped.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])):
        lines.append(f"{writer:>7} -> {reader:<7} {', '.join(arts)}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def code_markdown() -> str:
    """Per stage: the parameter sections, outside inputs and code its cache key covers (derived)."""
    common = {"__init__.py", "config.py", "io.py", "errors.py", "schemas.py", "catalog.py", "safety.py"}
    lines = ["| stage | params | outside the batch folder | code (besides pipeline/__init__, config, io, errors, "
             "schemas, catalog, safety when imported) |", "|---|---|---|---|"]
    for s in topological_order():
        code = [c for c in stage_code(s) if c not in common]
        lines.append(f"| {s.name} | {', '.join(('seed', *s.params))} | {s.external or '-'} | {_compact(code)} |")
    return "\n".join(lines) + "\n"


def _compact(files: list[str]) -> str:
    """'a/x.py a/y.py b.py' -> 'a/{x,y}, b' (modules without .py)."""
    groups: dict[str, list[str]] = {}
    for f in files:
        head, _, tail = f.rpartition("/")
        groups.setdefault(head, []).append(tail.removesuffix(".py"))
    parts: list[str] = []
    for head, names in groups.items():
        if not head:
            parts += names
        elif head == "resources":
            parts += [f"resources/{n}" for n in names]
        else:
            parts.append(f"{head}/{{{','.join(names)}}}" if len(names) > 1 else f"{head}/{names[0]}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--markdown"]:
        sys.stdout.write(markdown())
    elif args == ["--code"]:
        sys.stdout.write(code_markdown())
    else:
        print("usage: python -m pipeline.catalog --markdown | --code", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
