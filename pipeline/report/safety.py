"""The output-safety primitives the report writers use (one implementation, in `pipeline.safety`)."""

from pipeline.safety import (
    FORMULA_PREFIXES,
    XLSX_MAX_CHARS,
    esc,
    md_cell,
    md_text,
    neutralise_cell,
    neutralise_frame,
    safe_obj,
    safe_text,
    xlsx_text,
)

__all__ = ["FORMULA_PREFIXES", "XLSX_MAX_CHARS", "esc", "md_cell", "md_text", "neutralise_cell",
           "neutralise_frame", "safe_obj", "safe_text", "xlsx_text"]
