"""The `wsis` command: a thin shell over the stage modules (argument parsing, logging, summaries)."""

from __future__ import annotations

import errno
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline import config
from pipeline.errors import InputError

app = typer.Typer(
    help="wsis-themes: consultation submissions -> themes, WSIS Action Line and SDG tags, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

_state = {"verbose": False}
F = TypeVar("F", bound=Callable[..., Any])

_OS_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists and is not a folder",
}


def user_error_message(exc: BaseException) -> str:
    """One line for the analyst: the file, the record and the reason, never a traceback."""
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError):
        reason = _OS_REASONS.get(exc.errno or -1, exc.strerror or str(exc))
        where = exc.filename if exc.filename is not None else "output"
        return f"{where}: {reason}"
    if isinstance(exc, MemoryError):
        return "out of memory: the input is too large for this machine (see max_file_mb and the cluster mode)"
    return f"internal error ({type(exc).__name__}: {exc}); run again with --verbose for the details"


def user_errors(command: F) -> F:
    """Every command ends with a one-line reason and a non-zero exit instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            console.print("[red]interrupted[/red]: finished stages are kept; `wsis run` resumes from there")
            raise typer.Exit(code=130) from None
        except Exception as exc:  # noqa: BLE001 - the one place that turns failures into messages
            if _state["verbose"]:
                logging.getLogger("pipeline.cli").exception("%s failed", command.__name__)
            console.print(f"[red]error:[/red] {escape(user_error_message(exc))}", highlight=False, soft_wrap=True)
            code = 1 if isinstance(exc, InputError | OSError) else 3
            raise typer.Exit(code=code) from None

    return wrapper  # type: ignore[return-value]


EditsOpt = typer.Option(
    None, "--edits", help="Analyst edits of the themes (YAML: rename, merge, split, move, drop), applied on every run."
)
ParamsOpt = typer.Option(
    None, "--params", help="Parameters file (default: params.yaml); validated, unknown keys are errors.")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Log debug messages.")


def _setup(params_file: Path | None, verbose: bool, overrides: dict[str, Any] | None = None,
           overrides_source: str = "overrides") -> dict[str, Any]:
    """Logging, then the validated parameters (defaults filled in) every command runs with."""
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("sentence_transformers", "transformers", "urllib3", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return config.load_params(params_file, overrides, overrides_source)


def _summary(title: str, summary: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        if isinstance(value, dict | list):
            continue
        table.add_row(str(key), str(value))
    console.print(table)


def _batch_dir(inputs: list[Path], out: Path | None) -> Path:
    if out is not None:
        return out
    first = inputs[0] if inputs else config.SAMPLE_BATCH_DIR
    name = first.stem if first.is_file() else first.resolve().name
    return config.PROCESSED_DIR / name


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@app.command()
@user_errors
def ingest(
    inputs: list[Path] = typer.Argument(None, help="Files or folders of submissions."),
    out: Path | None = typer.Option(None, "--out", help="Batch output folder."),
    questionnaire: Path | None = typer.Option(None, help="Questionnaire definition (YAML)."),
    mapping: str | None = typer.Option(
        None, help="Column mapping of a known corpus or a YAML mapping file (see README)."
    ),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Read submissions (ITU text exports, CSV/XLSX, long tables, documents) into answers.parquet."""
    params = _setup(params_file, verbose)
    from pipeline.ingest import stage

    inputs = inputs or [config.SAMPLE_BATCH_DIR]
    try:
        summary = stage.run(inputs, _batch_dir(inputs, out), params, questionnaire, mapping)
    except InputError as exc:
        _fail(exc)
    _summary("ingest", summary)
    if not summary.get("answers"):
        console.print("[red]nothing could be read[/red]; see quarantine.csv")
        raise typer.Exit(code=2)


@app.command()
@user_errors
def clean(
    out: Path = typer.Option(None, "--out", help="Batch folder holding answers.parquet."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Normalise text, flag non-answers and duplicates, detect language, segment, find mentions, redact."""
    params = _setup(params_file, verbose)
    from pipeline.clean import stage

    _summary("clean", stage.run(_batch_dir([], out), params))


@app.command()
@user_errors
def embed(
    out: Path = typer.Option(None, "--out", help="Batch folder holding answers_clean.parquet."),
    backend: str | None = typer.Option(None, help="torch | onnx | multilingual | auto (overrides params)."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Embed answers and segments offline, reusing the content-addressed cache."""
    params = _setup(params_file, verbose, {"embed": {"backend": backend}} if backend else None, "--backend")
    from pipeline.embed import stage

    _summary("embed", stage.run(_batch_dir([], out), params, config.cache_dir()))


@app.command()
@user_errors
def themes(
    input: Path | None = typer.Option(
        None, "--input", help="Any canonical long file (CSV/XLSX/Parquet); runs ingest+clean+embed first."
    ),
    out: Path = typer.Option(None, "--out", help="Output folder (batch folder when --input is absent)."),
    framework: Path | None = typer.Option(
        None, "--framework", help="Analyst theme framework (YAML or CSV: id, label, description)."
    ),
    examples: Path | None = typer.Option(
        None, "--examples",
        help="Coded answers to learn from (CSV/XLSX: answer, themes as ';'-separated frame ids, optional "
        "response_id); answers of the input they name keep these codes.",
    ),
    review_sheet: Path | None = typer.Option(
        None, "--review-sheet", help="Write the answers to code next (XLSX, readable back as --examples)."
    ),
    n: int = typer.Option(50, "--n", help="Rows of the review sheet."),
    edits: Path | None = EditsOpt,
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Discover themes per question (or map answers to a given framework, learning from coded examples)."""
    params = _setup(params_file, verbose)
    from pipeline.themes import stage

    if input is not None:
        summary = stage.run_on_file(input, out or _batch_dir([input], None), params, framework, examples,
                                    review_sheet, n, edits)
    else:
        summary = stage.run(_batch_dir([], out), params, framework, examples, review_sheet, n, edits)
    _summary("themes", summary)


@app.command()
@user_errors
def stance(
    out: Path = typer.Option(None, "--out", help="Batch folder holding the theme tables."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Stance of each answer toward what its themes or its question propose (support/oppose/conditional/neutral)."""
    params = _setup(params_file, verbose)
    from pipeline.stance import stage

    _summary("stance", stage.run(_batch_dir([], out), params, config.cache_dir()))


@app.command()
@user_errors
def tag(
    input: Path | None = typer.Option(None, "--input", help="Ad-hoc file with columns id,text."),
    output: Path | None = typer.Option(None, "--output", help="Ad-hoc output file (CSV/XLSX/Parquet)."),
    out: Path | None = typer.Option(None, "--out", help="Batch folder (pipeline mode)."),
    model: Path | None = typer.Option(None, "--model", help="Model version folder (default: current)."),
    explain: bool = typer.Option(False, "--explain", help="Show labels, scores and evidence per text."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Tag answers with WSIS Action Lines and SDGs (pipeline stage or ad-hoc on an id,text file)."""
    params = _setup(params_file, verbose)
    from pipeline.tagger import stage

    if input is not None:
        if output is None:
            _fail(ValueError("--output is required with --input"))
        summary = stage.run_adhoc(input, output, params, model, explain)  # type: ignore[arg-type]
    else:
        summary = stage.run(_batch_dir([], out), params, model)
    _summary("tag", summary)


@app.command("train-tagger")
@user_errors
def train_tagger(
    labels: list[Path] = typer.Option(None, "--labels", help="Analyst label files (XLSX/CSV)."),
    models_dir: Path | None = typer.Option(
        None, "--models-dir", help="Models folder holding tagger/ (default: models/ or WSIS_MODELS_DIR)."),
    force: bool = typer.Option(False, "--force", help="Make the new version CURRENT even if not proven better."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Train the Action Line / SDG tagger, save a new model version with its card, and make it CURRENT only if
    it is better than CURRENT on held-out analyst labels (paired bootstrap; a tie is not better)."""
    params = _setup(params_file, verbose)
    from pipeline.tagger import train

    _summary("train-tagger", train.run(list(labels or []), params, models_dir, force))


@app.command("label-sheet")
@user_errors
def label_sheet(
    out: Path | None = typer.Option(None, "--out", help="Batch folder with tags.parquet."),
    output: Path = typer.Option(Path("label_sheet.xlsx"), "--output", help="XLSX to write."),
    n: int = typer.Option(100, "--n", help="How many uncertain answers to include."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write an XLSX of the answers the tagger is least sure about, for analysts to correct."""
    params = _setup(params_file, verbose)
    from pipeline.tagger import labelsheet

    _summary("label-sheet", labelsheet.run(_batch_dir([], out), output, params, n))


@app.command()
@user_errors
def report(
    out: Path | None = typer.Option(None, "--out", help="Batch folder."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write theme tables (CSV, XLSX), report.md, report.html and run_manifest.json."""
    params = _setup(params_file, verbose)
    from pipeline.report import stage

    try:
        summary = stage.run(_batch_dir([], out), params)
    except InputError as exc:
        _fail(exc)
    _summary("report", summary)


@app.command()
@user_errors
def evaluate(
    pred: Path = typer.Option(..., "--pred", help="Predictions (tags or theme assignments)."),
    gold: Path = typer.Option(..., "--gold", help="Gold file (format in README)."),
    kind: str = typer.Option("tags", "--kind", help="tags | themes | discovery"),
    output: Path | None = typer.Option(None, "--output", help="Write metrics JSON here."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Compare predictions with a gold file: per-label P/R/F1, micro/macro/samples F1 with 95% CIs."""
    params = _setup(params_file, verbose)
    from pipeline import evaluate as evaluation

    _summary("evaluate", evaluation.run(pred, gold, kind, output, params))


@app.command("params")
@user_errors
def params_command(
    show: bool = typer.Option(False, "--show", help="Print the resolved parameters as YAML (the default)."),
    check: Path | None = typer.Option(None, "--check", help="Validate this parameters file and exit."),
    sets: list[str] = typer.Option(
        None, "--set", help="section.key=value (value read as YAML), applied over the file; repeatable."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Print the resolved parameters (values that differ from the defaults are marked) or check a file."""
    if check is not None:
        params = _setup(check, verbose, config.parse_overrides(list(sets or [])), "--set")
        changed = config.changed_keys(params)
        console.print(f"{check}: valid; {len(changed)} value(s) differ from the defaults"
                      + (f": {', '.join(changed)}" if changed else ""), highlight=False, soft_wrap=True)
        if not show:
            return
    else:
        params = _setup(params_file, verbose, config.parse_overrides(list(sets or [])), "--set")
    typer.echo(config.params_yaml(params), nl=False)


@app.command()
@user_errors
def run(
    inputs: list[Path] = typer.Argument(None, help="Files or folders (default: the sample batch)."),
    out: Path | None = typer.Option(None, "--out", help="Batch output folder."),
    force: bool = typer.Option(False, "--force", help="Re-run every stage."),
    questionnaire: Path | None = typer.Option(None, help="Questionnaire definition (YAML)."),
    mapping: str | None = typer.Option(None, help="Column mapping (see `wsis ingest`)."),
    framework: Path | None = typer.Option(None, "--framework", help="Analyst theme framework."),
    examples: Path | None = typer.Option(
        None, "--examples", help="Coded answers for the framework to learn from (see `wsis themes`)."
    ),
    edits: Path | None = EditsOpt,
    cluster: str | None = typer.Option(
        None, "--cluster", help="Run on Dask: local, local:N (workers) or a scheduler address (needs the cluster "
        "extra; run.cluster in params). Every stage runs: no skipping yet."),
    params_file: Path | None = ParamsOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Run every stage in order, skipping those whose inputs, parameters and code are unchanged."""
    params = _setup(params_file, verbose)
    from pipeline import runner

    inputs = inputs or [config.SAMPLE_BATCH_DIR]
    spec = cluster or (params.get("run") or {}).get("cluster")
    try:
        if spec:
            from pipeline.cluster import run_distributed

            result = run_distributed(
                inputs, _batch_dir(inputs, out), params, spec, questionnaire=questionnaire, mapping=mapping,
                framework=framework, examples=examples, edits=edits, console=console,
            )
        else:
            result = runner.run_all(
                inputs, _batch_dir(inputs, out), params, force=force, questionnaire=questionnaire,
                mapping=mapping, framework=framework, console=console, examples=examples, edits=edits,
            )
    except InputError as exc:
        _fail(exc)
    runner.print_summary(result, console)


if __name__ == "__main__":
    app()
