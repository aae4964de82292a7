"""Stage 1, ingest: submission files of any supported format -> answers.parquet + quarantine.csv."""

from pipeline.ingest.core import IngestResult, ingest_paths
from pipeline.ingest.questionnaire import Questionnaire, load_questionnaire

__all__ = ["IngestResult", "Questionnaire", "ingest_paths", "load_questionnaire"]
