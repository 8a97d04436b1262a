"""Alert sensors: a failed run, a failed blocking check (the push held back), verify damage, new
dead letters and a backup late beyond its RPO reach the channels of `TALENTVAULT_ALERT_URLS`
(orchestration/alerts.py).

Two run status sensors read each finished run once (failed or successful: a blocking check can
fail in either), so each event alerts once, from the run's own event log; the freshness sensor
keeps the late days it reported in its cursor. A first tick starts at the present instead of
replaying history. They are on by default, also when automation is paused (a backfill's
failures need a person too). Without a channel configured they log the alert's title instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import dagster as dg

from orchestration.alerts import ALERT_URLS_VAR, Alert, send
from orchestration.config import ModeError, data_root, mode
from orchestration.storage.backup_state import reference_now, source_states

PUSH_KEY = dg.AssetKey(["sync", "keap_push"])
VERIFY_CHECK = "backup_files_match_manifests"
MAX_LISTED = 20


def delivered(context: dg.SensorEvaluationContext | dg.RunStatusSensorContext,
              alerts: Iterable[Alert]) -> str:
    """Send each alert; a line for the tick (titles only: the bodies are in the channel)."""
    alerts = list(alerts)
    if not alerts:
        return "nothing to report"
    sent = [send(a) for a in alerts]
    titles = "; ".join(a.title for a in alerts)
    if all(sent):
        return f"sent: {titles}"
    context.log.warning("no alert channel configured (%s): %s", ALERT_URLS_VAR, titles)
    return f"not sent, set {ALERT_URLS_VAR}: {titles}"


def counts(metadata: dict) -> str:
    """The numeric metadata of an event (counts: never a person's value, which is text)."""
    items = [(k, getattr(v, "value", v)) for k, v in metadata.items()]
    shown = [f"{k}={v}" for k, v in items
             if isinstance(v, int | float) and not isinstance(v, bool)]
    return f" ({', '.join(shown[:6])})" if shown else ""


def partition_of(run: dg.DagsterRun, evaluation: dg.AssetCheckEvaluation) -> str:
    return evaluation.partition or run.tags.get("dagster/partition") or "-"


# -- what a finished run needs a person for ------------------------------------------------------
def error_type(error: object) -> str:
    """The class of the error that started it (Dagster wraps it): a type, never its message."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return getattr(error, "cls_name", None) or "unknown error"


def failed_run_alert(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Alert:
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    steps = sorted({f"{e.step_key} ({error_type(e.dagster_event.event_specific_data.error)})"
                    for e in failures})
    more = f" and {len(steps) - MAX_LISTED} more" if len(steps) > MAX_LISTED else ""
    return Alert(f"run failed: {run.job_name}", [
        f"Job {run.job_name} failed.",
        f"Partition: {run.tags.get('dagster/partition', '-')}",
        f"Failed steps: {', '.join(steps[:MAX_LISTED]) or 'none (the run itself failed)'}{more}"],
        [run.run_id])


def held_push_alert(run: dg.DagsterRun, failed: list[dg.AssetCheckEvaluation]) -> Alert | None:
    if not failed:
        return None
    days = sorted({partition_of(run, ev) for ev in failed})
    lines = [f"- {ev.asset_key.to_user_string()} {ev.check_name} failed for "
             f"{partition_of(run, ev)}{counts(ev.metadata)}" for ev in failed[:MAX_LISTED]]
    if len(failed) > MAX_LISTED:
        lines.append(f"- and {len(failed) - MAX_LISTED} more")
    lines += ["", f"The Keap push (sync/keap_push) for {', '.join(days)} is held back: it runs "
              "only once every blocking check of that day passes. Fix the data at the vendor, "
              "then re-run that day's backup (docs/checks.md says what each check means)."]
    return Alert(f"blocking check failed, Keap push held for {', '.join(days)}", lines,
                 [run.run_id])


def verify_damage_alert(run: dg.DagsterRun, failed: list[dg.AssetCheckEvaluation]) -> Alert | None:
    if not failed:
        return None
    lines = [f"verify found damaged backup files{counts(ev.metadata)}." for ev in failed]
    lines.append("`talentvault verify --read-data` names each file; docs/recovery.md says how to "
                 "repair from a replica or a re-run.")
    return Alert("verify found damage", lines, [run.run_id])


def dead_letter_alerts(run: dg.DagsterRun, pushes: list[dg.EventLogRecord]) -> list[Alert]:
    alerts = []
    for r in pushes:
        meta = r.asset_materialization.metadata
        new = getattr(meta.get("failed_permanent"), "value", 0) or 0
        if not new:
            continue
        day = r.partition_key or run.tags.get("dagster/partition", "-")
        total = getattr(meta.get("dead_letters_total"), "value", None)
        alerts.append(Alert(f"{new} new dead letter(s) in the Keap push for {day}", [
            f"Keap refused {new} change(s) for good in the push for {day}"
            + (f"; {total} in the dead letter in all." if total is not None else "."),
            "`talentvault sql \"SELECT * FROM sync.dead_letter\"` lists the change ids and "
            "reasons; a change leaves it when its data changes."], [run.run_id]))
    return alerts


def run_alerts(instance: dg.DagsterInstance, run: dg.DagsterRun, failed: bool) -> list[Alert]:
    """Everything a finished run tells a person: that it failed; blocking checks that failed
    (the push held); verify damage; changes Keap refused for good."""
    checks = [r.event_log_entry.dagster_event.event_specific_data for r in
              instance.get_records_for_run(
                  run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records]
    failing = [ev for ev in checks
               if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR]
    damage = [ev for ev in failing if ev.check_name == VERIFY_CHECK]
    blocking = [ev for ev in failing if ev.check_name != VERIFY_CHECK and ev.blocking]
    pushes = [r for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        if r.asset_key == PUSH_KEY]
    alerts = [failed_run_alert(instance, run)] if failed else []
    alerts += [a for a in (held_push_alert(run, blocking), verify_damage_alert(run, damage)) if a]
    return alerts + dead_letter_alerts(run, pushes)


def run_alert_sensor(status: dg.DagsterRunStatus, name: str,
                     what: str) -> dg.RunStatusSensorDefinition:
    failed = status == dg.DagsterRunStatus.FAILURE

    @dg.run_status_sensor(
        name=name, run_status=status, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Tells the channels of {ALERT_URLS_VAR} {what}: failed blocking checks (the "
        "Keap push held, and which check says why), verify damage, new dead letters.")
    def alert(context: dg.RunStatusSensorContext) -> None:
        delivered(context, run_alerts(context.instance, context.dagster_run, failed=failed))

    return alert


failed_run_alert_sensor = run_alert_sensor(
    dg.DagsterRunStatus.FAILURE, "failed_run_alert_sensor",
    "when a run fails (job, run id and link, partition, failed steps and their error types), "
    "and what else it found")
finished_run_alert_sensor = run_alert_sensor(
    dg.DagsterRunStatus.SUCCESS, "finished_run_alert_sensor",
    "what a successful run found that needs a person")


# -- freshness (the RPO) --------------------------------------------------------------------------
@dg.sensor(
    name="freshness_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=600,
    description=f"Tells the channels of {ALERT_URLS_VAR} when a source's newest whole backed-up "
    "day is older than the RPO (TALENTVAULT_RPO_HOURS, default 26 h); once per late day.",
)
def freshness_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    try:
        now, clock = reference_now(mode())
        states = source_states(data_root(), now)
    except ModeError as e:
        return dg.SensorResult(skip_reason=f"cannot judge freshness: {e}", cursor=context.cursor)
    reported = json.loads(context.cursor) if context.cursor else {}
    # a source never backed up is the first backup's business, not an alert; status shows it
    late = [s for s in states if s.day and s.late]
    alerts = [Alert(f"{s.source} backup late: newest whole day {s.day} is {s.age_hours} h old",
                    [f"{s.source}: the newest day every entity has backed up whole is {s.day}, "
                     f"{s.age_hours} h ago by the {clock} clock; the RPO is {s.rpo_hours:g} h.",
                     "Look for a failed or missing backup_job run; `talentvault status` shows "
                     "each entity's newest day."])
              for s in late if reported.get(s.source) != s.day]
    skip = delivered(context, alerts)
    return dg.SensorResult(skip_reason=skip,
                           cursor=json.dumps({s.source: s.day for s in late}, sort_keys=True))


alert_sensors = [failed_run_alert_sensor, finished_run_alert_sensor, freshness_alert_sensor]
