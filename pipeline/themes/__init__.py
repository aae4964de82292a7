"""Stage 4, themes: discover named themes per question (or map answers to an analyst framework)."""

from pipeline.themes.discovery import ThemeResult, discover_themes
from pipeline.themes.seeds import SeedThemes, load_seed_themes

__all__ = ["ThemeResult", "SeedThemes", "discover_themes", "load_seed_themes"]
