"""`python -m pipeline` is the same as the `wsis` command."""

from pipeline.cli import app

if __name__ == "__main__":
    app()
