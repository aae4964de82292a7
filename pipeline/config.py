"""Where things live and the one parameters file (`params.yaml`)."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.errors import InputError
from pipeline.io import load_yaml
from pipeline.params import Params, Section, defaults, section_model, section_type

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
RESOURCES_DIR = PACKAGE_DIR / "resources"
DEFAULT_PARAMS_FILE = PROJECT_ROOT / "params.yaml"
RAW_DIR = PROJECT_ROOT / "data" / "raw"
PROCESSED_DIR = PROJECT_ROOT / "data" / "processed"
SAMPLE_BATCH_DIR = RAW_DIR / "wsis20-sample"


def models_dir() -> Path:
    """Root of trained models; `WSIS_MODELS_DIR` overrides it (tests use a temporary copy)."""
    return Path(os.environ.get("WSIS_MODELS_DIR", PROJECT_ROOT / "models"))


def cache_dir() -> Path:
    """Content-addressed caches shared by all batches; `WSIS_CACHE_DIR` overrides it."""
    return Path(os.environ.get("WSIS_CACHE_DIR", PROCESSED_DIR / "cache"))


def onnx_export_dir() -> Path:
    """Where the int8 ONNX export of the English encoder is built once (a build artefact of the installed model,
    shared by every embedding cache); `WSIS_ONNX_DIR` overrides it."""
    return Path(os.environ.get("WSIS_ONNX_DIR", PROCESSED_DIR / "cache"))


def load_params(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None, overrides_source: str = "overrides",
) -> dict[str, Any]:
    """Read `params.yaml` (or `path`), deep-merge `overrides`, validate both against `pipeline.params` and
    return a fresh plain dict with every default filled in.

    An unknown key, a wrong type or a bad value is an `InputError` naming the file (or `overrides_source`),
    the dotted key and the reason, so a typo is never silently ignored."""
    file = Path(path) if path else DEFAULT_PARAMS_FILE
    raw = read_params_file(file)
    validated = validate_params(raw, str(file))
    if overrides:
        validated = validate_params(deep_merge(raw, overrides), overrides_source)
    return validated.model_dump()


def read_params_file(file: Path) -> dict[str, Any]:
    """The raw mapping of a parameters file (no defaults); a YAML error names the line."""
    try:
        with open(file, encoding="utf-8") as fh:
            raw = load_yaml(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        reason = str(getattr(exc, "problem", None) or exc).strip()
        raise InputError(str(file), where, f"not valid YAML: {reason}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(str(file), None, f"must be a mapping of sections (section: {{key: value}}), "
                                          f"not {type(raw).__name__}")
    return raw


def validate_params(raw: dict[str, Any], source: str) -> Params:
    """`raw` as typed parameters, or an InputError naming `source`, the dotted key and the reason."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = _problems(exc)
        (key, reason), rest = problems[0], problems[1:]
        if rest:
            reason += "; also " + "; ".join(f"{k}: {r}" for k, r in rest)
        raise InputError(source, key, reason) from None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted key, one-line reason) per invalid key, in the order pydantic reports them; the alternatives of
    a union (`sentence_scoring: bool | "auto"...`) are joined into one reason."""
    reasons: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for err in exc.errors():
        model, parts = section_model(Params, err["loc"])
        key = ".".join(parts) or "(top level)"
        if err["type"] == "extra_forbidden" and len(parts) == len(err["loc"]):
            reason = _unknown_key(model, parts[-1])
        elif err["type"] == "model_type":
            reason = "must be a section of key: value lines"
        else:
            reason = err["msg"][0].lower() + err["msg"][1:]
            value = repr(err.get("input"))
            shown.setdefault(key, value if len(value) <= 60 else value[:57] + "...")
        if reason not in reasons.setdefault(key, []):
            reasons[key].append(reason)
    return [(k, " or ".join(v) + (f" (got {shown[k]})" if k in shown else "")) for k, v in reasons.items()]


def _unknown_key(model: type[Section], name: str) -> str:
    known = list(model.model_fields)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]}?"
    return f"unknown key (known here: {', '.join(known)})"


def parse_overrides(items: list[str], source: str = "--set") -> dict[str, Any]:
    """`section.key=value` strings (value read as YAML: 30, true, null, [a, b]) as a nested overrides dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or not all(parts):
            raise InputError(source, item, "expected section.key=value (e.g. themes.min_theme_size=5)")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise InputError(source, item, f"value is not valid YAML: {exc}") from None
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(source, item, f"{part} is set both as a value and as a section")
        node[parts[-1]] = value
    return out


def _leaves(
    model: type[Section], values: dict[str, Any], dflt: dict[str, Any], depth: int = 0,
) -> Iterator[tuple[int, str, Any, Any, bool]]:
    """(depth, key, value, default, is_section) in the order of the model, sections before their keys."""
    for name, field in model.model_fields.items():
        sub = section_type(field.annotation)
        if sub is not None:
            yield depth, name, None, None, True
            yield from _leaves(sub, values.get(name) or {}, dflt.get(name) or {}, depth + 1)
        else:
            yield depth, name, values.get(name), dflt.get(name), False


def params_yaml(values: dict[str, Any]) -> str:
    """Resolved parameters as YAML, each value that differs from the default marked `# default: ...`."""

    def flow(value: Any) -> str:
        return yaml.safe_dump([value], default_flow_style=True, width=10**9, sort_keys=False).strip()[1:-1]

    lines = []
    for depth, name, value, default, is_section in _leaves(Params, values, defaults()):
        line = "  " * depth + f"{name}:"
        if not is_section:
            line += f" {flow(value)}" + (f"  # default: {flow(default)}" if value != default else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


def changed_keys(values: dict[str, Any]) -> list[str]:
    """Dotted names of the parameters whose value differs from the default."""
    out: list[str] = []
    path: list[str] = []
    for depth, name, value, default, is_section in _leaves(Params, values, defaults()):
        path[depth:] = [name]
        if not is_section and value != default:
            out.append(".".join(path))
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Return a new dict: `base` with `extra` merged in recursively."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_params(params: dict[str, Any], stage: str) -> dict[str, Any]:
    """The section of one stage plus the global seed (what the stage's cache key depends on)."""
    section = dict(params.get(stage, {}) or {})
    section.setdefault("seed", params.get("seed", 0))
    return section
