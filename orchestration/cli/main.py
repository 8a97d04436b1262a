"""The `talentvault` command: the root app and the order its groups and commands are listed in.
Each group or command lives in its own module beside this one."""

from __future__ import annotations

import typer

from orchestration.cli.audit import audit_app
from orchestration.cli.demo import demo_command
from orchestration.cli.encryption import encryption_app
from orchestration.cli.forget import forget_command
from orchestration.cli.mapping import mapping_app
from orchestration.cli.restore import restore_app
from orchestration.cli.retention import retention_command
from orchestration.cli.runs import runs_app
from orchestration.cli.sandbox import sandbox_app
from orchestration.cli.sql import sql_command
from orchestration.cli.startup import check_mode_at_start
from orchestration.cli.status import status_command
from orchestration.cli.sync import sync_app
from orchestration.cli.ui import ui_command
from orchestration.cli.verify import seal_command, verify_command
from orchestration.cli.webhooks import webhooks_app

app = typer.Typer(
    help="talentvault: backups, data checks and Keap sync for recruiting data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.callback()(check_mode_at_start)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(mapping_app, name="mapping")
app.add_typer(sync_app, name="sync")
app.command("status")(status_command)
app.command("verify")(verify_command)
app.command("seal")(seal_command)
app.command("retention")(retention_command)
app.command("forget")(forget_command)
app.add_typer(restore_app, name="restore")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(audit_app, name="audit")
app.add_typer(runs_app, name="runs")
app.add_typer(encryption_app, name="encryption")
app.command("demo")(demo_command)
app.command("ui")(ui_command)
app.command("sql")(sql_command)


if __name__ == "__main__":
    app()
