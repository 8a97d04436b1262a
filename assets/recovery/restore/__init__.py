"""Point-in-time restore of Keap and HighLevel from the backups: preview, then apply.

    from assets.recovery.restore import Selection, preview
    from assets.recovery.restore.apply import apply

    plan = preview(root, "keap", "2025-11-20T18:00:00Z", Selection(tag="LinkedIn"))
    print(plan.markdown)            # what would change; nothing was written
    apply(root, plan.plan_id)       # exactly that, or a refusal if live changed meanwhile

Modules: fields (what is compared and written), live (reading the live system), diff (the
DuckDB diff), plan (preview and plan files), apply (whether to write: the fresh diff, the
refusals, the order), runner (the write machinery: Write, Runner, the values sent), keap and
highlevel (the writes of each vendor), config (HighLevel custom fields recreated, pipelines and
workflows to rebuild by hand), children and children_apply (notes and tasks of the contacts:
compared, then written after them), ledger (outcomes and new ids).

Dagster: `restore_preview_job` and `restore_apply_job` (orchestration/jobs.py), launchable from
the UI with run config; the preview's markdown is the step's output metadata.
"""

# `apply` is imported from its module (assets.recovery.restore.apply), not from here: the
# package's name `apply` is that module
from assets.recovery.restore.apply import RestoreRefused
from assets.recovery.restore.plan import DEFAULT_MODES, Plan, Selection, load_plan, preview

__all__ = ["DEFAULT_MODES", "Plan", "RestoreRefused", "Selection", "load_plan", "preview"]
