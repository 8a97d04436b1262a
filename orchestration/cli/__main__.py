"""`python -m orchestration.cli ...`: the `talentvault` command without the console script (the
background sandbox and subprocess tests start it this way)."""

from orchestration.cli.main import app

app()
