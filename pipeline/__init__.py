"""wsis-themes: offline pipeline from consultation submissions to theme tables, Action Line and SDG tags."""

__version__ = "0.1.0"
