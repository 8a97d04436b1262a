"""The `talentvault` command: one module per command group, wired into one Typer app by
`main.py` (the console script `talentvault = "orchestration.cli:app"`; `python -m
orchestration.cli` runs the same app). The commands only parse options, call the product and
print: the work lives in assets/, checks/ and orchestration/."""

from orchestration.cli.main import app

__all__ = ["app"]
