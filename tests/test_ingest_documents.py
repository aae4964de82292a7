"""Free-form documents (.txt, .md, .docx, .pdf) and unreadable files: one document answer or a quarantine line."""

from __future__ import annotations

import os
from pathlib import Path

import docx
import pytest

from pipeline.ingest import ingest_paths, load_questionnaire

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
Q = load_questionnaire("itu_wsis20")


def make_pdf(path: Path, lines: list[str], title: str = "") -> None:
    """A minimal valid one-page PDF with the given text lines (Helvetica), written by hand."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({safe}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    path.write_bytes(bytes(out))


def test_text_document_with_metadata_block() -> None:
    result = ingest_paths([FIXTURES / "netmundial_like.txt"], Q, {})
    a = result.answers
    assert result.quarantine.empty and len(a) == 1
    row = a.iloc[0]
    assert row["question_id"] == "document" and row["is_document"] and row["source_format"] == "document"
    assert row["response_id"] == "netmundial_like"
    assert row["org_name"] == "Instituto Ficticio de Redes, Comunidad Abierta"
    assert row["org_type"] == "Civil Society" and row["stakeholder_group"] == "civil society"
    assert row["country"] == "" and row["region"] == "Americas"  # a region, not a country
    assert row["question_text"] == "A ROADMAP FOR OPEN AND SHARED NETWORKS"
    # the whole text is kept, numbered paragraphs included
    assert "2. Capacity building needs stable funding." in row["answer"]
    assert row["answer"].endswith("Networks are built by people.")
    assert pd_isna(row["question_number"])


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_docx_document(tmp_path: Path) -> None:
    doc = docx.Document()
    doc.core_properties.title = "Position paper on rural access"
    doc.core_properties.author = "Hilltop Radio Association"
    doc.add_paragraph("We ask for community spectrum.")
    doc.add_paragraph("1. Licence-exempt bands for villages.")
    table = doc.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Goal"
    table.rows[0].cells[1].text = "Coverage"
    path = tmp_path / "paper.docx"
    doc.save(str(path))
    a = ingest_paths([path], Q, {}).answers
    assert len(a) == 1
    row = a.iloc[0]
    assert row["is_document"] and row["question_text"] == "Position paper on rural access"
    assert row["org_name"] == "Hilltop Radio Association"
    assert "We ask for community spectrum." in row["answer"] and "Goal | Coverage" in row["answer"]


def test_docx_holding_a_form_export_is_parsed_as_the_form(tmp_path: Path) -> None:
    doc = docx.Document()
    doc.add_paragraph("Response 950 \u2013 09/01/2025 11:00")
    for item, value in zip(Q.items, ["Delta Org", "Academia", "Ghana"] + [f"A{n}" for n in range(11)],
                           strict=True):
        doc.add_paragraph(f"{item.number}. {item.text}")
        doc.add_paragraph(value)
    path = tmp_path / "form.docx"
    doc.save(str(path))
    a = ingest_paths([path], Q, {}).answers
    assert len(a) == 11 and set(a["response_id"]) == {"950"} and set(a["source_format"]) == {"itu_text"}
    assert a["answer"].tolist() == [f"A{n}" for n in range(11)]


def test_pdf_document(tmp_path: Path) -> None:
    path = tmp_path / "brief.pdf"
    make_pdf(path, ["Connectivity is a public good.", "Second line of the brief."], title="Our brief")
    a = ingest_paths([path], Q, {}).answers
    assert len(a) == 1
    row = a.iloc[0]
    assert row["is_document"] and row["question_text"] == "Our brief"
    assert "Connectivity is a public good." in row["answer"] and "Second line" in row["answer"]


@pytest.mark.parametrize("name, payload, reason", [
    ("broken.pdf", b"%PDF-1.4\n garbage without objects", "PDF"),
    ("broken.docx", b"not a zip at all", "DOCX file is corrupt"),
    ("noise.txt", bytes(range(256)) * 4, "file is not valid UTF-8/CP1252 text"),
    ("empty.md", b"", "file is empty"),
    ("blank.txt", b"   \n\n  ", "file is empty"),
    ("image.png", b"\x89PNG\r\n\x1a\n....", "unsupported file type .png"),
    ("README.md", b"# About this batch", "README"),
])
def test_unreadable_files_are_quarantined(tmp_path: Path, name: str, payload: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    result = ingest_paths([tmp_path], Q, {})
    assert result.answers.empty
    assert len(result.quarantine) == 1
    line = result.quarantine.iloc[0]
    assert line["source_file"].endswith(name) and reason in line["reason"]


def test_stray_nul_bytes_do_not_reject_a_text(tmp_path: Path) -> None:
    path = tmp_path / "extracted.txt"
    path.write_bytes(b"Text extracted from a PDF.\x00 " + b"More words about access. " * 200)
    a = ingest_paths([path], Q, {}).answers
    assert len(a) == 1 and "\x00" not in a["answer"].iloc[0]


def test_folders_are_read_recursively_and_missing_paths_reported(tmp_path: Path) -> None:
    nested = tmp_path / "batch" / "sub"
    nested.mkdir(parents=True)
    (nested / "note.txt").write_text("A short free-form note about access.", encoding="utf-8")
    (tmp_path / "batch" / ".hidden.txt").write_text("ignored", encoding="utf-8")
    os.symlink(nested / "note.txt", tmp_path / "link-outside.txt")
    result = ingest_paths([tmp_path / "batch", tmp_path / "missing.txt"], Q, {})
    assert result.answers["source_file"].tolist() == ["batch/sub/note.txt"]
    assert result.quarantine["reason"].tolist() == ["input path does not exist"]
