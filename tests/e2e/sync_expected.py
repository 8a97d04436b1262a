"""An independent model of what each person's Keap contact must hold after a sync.

Plain Python over the sandbox's own records (`Store.iter_docs`), not over the backup, and no
SQL from assets/sync/desired/: the rules of docs/identity.md and docs/sync.md written a second
time, so the Keap sync tests compare two implementations.

- A person = the Greenhouse candidate records sharing a normalized email (transitively); records
  with no valid email are left out, as are clusters whose names share no word (or that are
  bigger than `max_cluster_size`): the identity quarantine.
- A profile's value of a field = the latest non-empty one (latest = the record's update time,
  then its id); emails, phones and tags are unions; `can_email` is true only if no record says
  false.
- The current application = the most recent activity (then the highest id).
- Fields and tags per the mapping document (events of the current application, stage/job/
  rejection-reason tags, exclusive groups: the first listed wins).

Only the per-value normalizers are shared with the product (`reference_email`,
`reference_phone`, `display_name`: each is itself checked against its library in the unit
tests).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from assets.identity.config import IdentityConfig, NormalizationConfig
from assets.identity.emails import reference_email
from assets.identity.names import display_name, nfkc_trim
from assets.identity.phones import reference_phone
from assets.sync.mapping import FALLBACK_KEY, Mapping
from sandbox.store import Store

# RE2's `[\s\p{Z}]` (what the SQL `trim` transform strips)
WHITESPACE = " \t\n\r\x0c\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
             "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


@dataclass
class ExpectedContact:
    profile_id: int
    email: str
    emails: list[str]
    fields: dict[str, str | None]        # Keap target -> value (None: cleared)
    tags: set[str]                       # managed tags the contact must carry
    events: list[str]
    ats_wins: set[str] = field(default_factory=set)   # targets the ATS always wins


@dataclass
class Expected:
    contacts: dict[str, ExpectedContact]  # by normalized primary email
    managed_tags: set[str]
    tag_categories: dict[str, str | None]
    left_out: dict[int, str]              # profile id -> why it is not synced


# -- small helpers ----------------------------------------------------------------------------
def _ts(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    try:
        t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _display(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    return display_name(pa.array([v]))[0].as_py()


def _text(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    out = nfkc_trim(pa.array([v]))[0].as_py()
    return out or None


def _name_key(display: str | None) -> str | None:
    if display is None:
        return None
    s = "".join(ch for ch in unicodedata.normalize("NFD", display.lower())
                if unicodedata.category(ch) != "Mn")
    words = "".join(ch if ch.isalnum() else " " for ch in s).split()
    return " ".join(words) or None


def _blank(v: Any) -> bool:
    return not isinstance(v, str) or v.strip(WHITESPACE) == ""


# -- identity, again ----------------------------------------------------------------------------
@dataclass
class _Cand:
    id: int
    first_name: str | None
    last_name: str | None
    preferred_name: str | None
    company: str | None
    title: str | None
    email: str | None
    emails: list[str]
    phone: str | None
    phones: list[str]
    tags: list[str]
    can_email: bool | None
    created_at: datetime | None
    updated_at: datetime | None
    name_tokens: set[str]


def _candidate(doc: dict[str, Any], cfg: NormalizationConfig) -> _Cand:
    emails: list[str] = []
    for item in doc.get("email_addresses") or []:
        raw = item.get("value") if isinstance(item, dict) else None
        if _blank(raw):
            continue
        e = reference_email(raw, cfg)
        if e is not None and e not in emails:
            emails.append(e)
    phones: list[str] = []
    for item in doc.get("phone_numbers") or []:
        raw = item.get("value") if isinstance(item, dict) else None
        if _blank(raw):
            continue
        p = reference_phone(raw, cfg)
        if p is not None and p not in phones:
            phones.append(p)
    first, last = _display(doc.get("first_name")), _display(doc.get("last_name"))
    preferred = _display(doc.get("preferred_name"))
    full = " ".join(x for x in (_name_key(first), _name_key(last)) if x)
    tokens = {t for t in f"{full} {_name_key(preferred) or ''}".split()
              if not (len(t) == 1 and "a" <= t <= "z")}
    tags = sorted({t.strip() for t in doc.get("tags") or [] if isinstance(t, str)} - {""})
    return _Cand(int(doc["id"]), first, last, preferred, _text(doc.get("company")),
                 _text(doc.get("title")), emails[0] if emails else None, sorted(emails),
                 phones[0] if phones else None, sorted(phones), tags, doc.get("can_email"),
                 _ts(doc.get("created_at")), _ts(doc.get("updated_at")), tokens)


def _clusters(cands: list[_Cand], cfg: IdentityConfig) -> list[list[_Cand]]:
    parent: dict[int, int] = {c.id: c.id for c in cands}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, int] = {}
    for c in cands:
        for e in c.emails:
            if e in owner:
                a, b = find(owner[e]), find(c.id)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[e] = c.id
    groups: dict[int, list[_Cand]] = defaultdict(list)
    for c in cands:
        groups[find(c.id)].append(c)
    out = []
    for members in groups.values():
        if len(members) > cfg.max_cluster_size:
            continue
        named = [c for c in members if c.name_tokens]
        if any(not (a.name_tokens & b.name_tokens) for i, a in enumerate(named)
               for b in named[i + 1:]):
            continue
        out.append(sorted(members, key=lambda c: c.id))
    return out


def _latest(members: list[_Cand], attr: str) -> Any:
    best = None
    for c in members:
        v = getattr(c, attr)
        if v is None:
            continue
        key = (c.updated_at or datetime.min.replace(tzinfo=UTC), c.id)
        if best is None or key > best[0]:
            best = (key, v)
    return best[1] if best else None


# -- the model ----------------------------------------------------------------------------------
def expected_contacts(store: Store, mapping: Mapping, *, suppressed_emails: set[str] = frozenset(),
                      identity: IdentityConfig | None = None) -> Expected:
    """What Keap must hold for each syncable person, keyed by normalized primary email."""
    cfg = identity or IdentityConfig()
    docs = {e: list(store.iter_docs("greenhouse", e)) for e in (
        "candidates", "applications", "jobs", "job_interview_stages", "application_stages",
        "interviews", "offers", "rejection_details", "rejection_reasons")}
    cands = [_candidate(d, cfg) for d in docs["candidates"]]
    synced = [c for c in cands if c.email is not None]
    offices = {d["id"]: d.get("name") for d in store.iter_docs("greenhouse", "offices")}
    departments = {d["id"]: d.get("name") for d in store.iter_docs("greenhouse", "departments")}
    for j in docs["jobs"]:
        j["_department_name"] = departments.get(j.get("department_id"))
        j["_office_name"] = offices.get((j.get("office_ids") or [None])[0])
    sources = {d["id"]: d.get("name") for d in store.iter_docs("greenhouse", "sources")}
    for a in docs["applications"]:
        a["_source_name"] = sources.get(a.get("source_id"))
    jobs = {int(d["id"]): d for d in docs["jobs"]}
    reasons = {int(d["id"]): d for d in docs["rejection_reasons"]}
    apps_by_cand: dict[int, list[dict]] = defaultdict(list)
    for a in docs["applications"]:
        if a.get("candidate_id") is not None:
            apps_by_cand[int(a["candidate_id"])].append(a)
    stage_rows: dict[int, int] = defaultdict(int)
    for r in docs["application_stages"]:
        stage_rows[int(r["application_id"])] += 1
    scheduled: set[int] = {int(i["application_id"]) for i in docs["interviews"]
                           if i.get("status") == "scheduled"}
    offers: dict[int, dict] = {}
    for o in docs["offers"]:
        if o.get("status") == "Deprecated":
            continue
        app_id = int(o["application_id"])
        key = (o.get("version") or 0, int(o["id"]))
        if app_id not in offers or key > offers[app_id][0]:
            offers[app_id] = (key, o)
    rejections: dict[int, dict] = {}
    for r in docs["rejection_details"]:
        app_id = int(r["application_id"])
        if app_id not in rejections or int(r["id"]) > int(rejections[app_id]["id"]):
            rejections[app_id] = r

    happened = _happened(docs, reasons, rejections, mapping)

    contacts: dict[str, ExpectedContact] = {}
    left_out: dict[int, str] = {}
    profiles = []
    for members in _clusters(synced, cfg):
        p = _profile(members, apps_by_cand)
        profiles.append(p)
    email_owners: dict[str, set[int]] = defaultdict(set)
    for p in profiles:
        for e in p["emails"]:
            email_owners[e].add(p["profile_id"])
    for p in profiles:
        pid = p["profile_id"]
        if set(p["emails"]) & set(suppressed_emails):
            left_out[pid] = "suppressed"
            continue
        if any(len(email_owners[e]) > 1 for e in p["emails"]):
            left_out[pid] = "shared_email"
            continue
        if mapping.can_email_false == "skip" and p["can_email"] is False:
            left_out[pid] = "can_email_false"
            continue
        cur = _current_state(p, jobs, reasons, stage_rows, scheduled, offers, rejections,
                             mapping)
        values = _values(p, cur, jobs)
        fields_out: dict[str, str | None] = {}
        for f in mapping.fields:
            v = _transform(values.get(f.source), f, cfg)
            if v is None:
                if f.null == "leave":
                    continue
                if f.null == "default":
                    v = f.default
            fields_out[f.target] = v
        tags = _tags(p, cur, jobs, mapping, happened)
        contacts[p["email"]] = ExpectedContact(
            pid, p["email"], p["emails"], fields_out, tags, cur["events"],
            {f.target for f in mapping.fields if f.conflict == "ats_wins"})
    managed, categories = _managed(docs, mapping)
    return Expected(contacts, managed, categories, left_out)


def _profile(members: list[_Cand], apps_by_cand: dict[int, list[dict]]) -> dict[str, Any]:
    p: dict[str, Any] = {"profile_id": members[0].id}
    for attr in ("first_name", "last_name", "preferred_name", "company", "title", "email",
                 "phone"):
        p[attr] = _latest(members, attr)
    p["emails"] = sorted({e for c in members for e in c.emails})
    p["phones"] = sorted({x for c in members for x in c.phones})
    flags = [c.can_email for c in members if c.can_email is not None]
    p["can_email"] = all(flags) if flags else None
    created = [c.created_at for c in members if c.created_at is not None]
    updated = [c.updated_at for c in members if c.updated_at is not None]
    p["created_at"] = min(created) if created else None
    p["updated_at"] = max(updated) if updated else None
    apps = [a for c in members for a in apps_by_cand.get(c.id, [])]
    p["apps"] = apps

    def recency(a: dict) -> tuple[int, int]:
        t = _ts(a.get("last_activity_at")) or _ts(a.get("updated_at"))
        return (int(t.timestamp() * 1000) if t else 0, int(a["id"]))

    p["current"] = max(apps, key=recency) if apps else None
    acts = [t for t in (_ts(a.get("last_activity_at")) for a in apps) if t is not None]
    p["last_activity_at"] = max(acts) if acts else None
    return p


def _current_state(p: dict, jobs: dict, reasons: dict, stage_rows: dict, scheduled: set,
                   offers: dict, rejections: dict, m: Mapping) -> dict[str, Any]:
    a = p["current"]
    if a is None:
        return {"status": None, "events": [], "reason": None, "reason_type": None,
                "stage_name": None}
    app_id = int(a["id"])
    status = a.get("status")
    offer = offers.get(app_id, (None, {}))[1].get("status")
    reason = reason_type = None
    if status == "rejected" and app_id in rejections:
        r = reasons.get(int(rejections[app_id]["rejection_reason_id"] or 0))
        if r is not None:
            reason, reason_type = r.get("name"), (r.get("type") or {}).get("name")
    declined = status == "rejected" and offer == "Rejected"
    withdrawn = (status == "rejected" and not declined
                 and (reason_type in m.withdrawn_reason_types or reason in m.withdrawn_reasons))
    holds = {
        "new_application": status == "in_process" and stage_rows.get(app_id, 0) <= 1,
        "stage_change": status == "in_process" and stage_rows.get(app_id, 0) > 1,
        "interview_scheduled": status == "in_process" and app_id in scheduled,
        "offer_extended": status == "in_process" and offer == "Created",
        "offer_accepted": status == "hired" and offer == "Accepted",
        "hired": status == "hired",
        "offer_declined": declined,
        "withdrawn": withdrawn,
        "rejected": status == "rejected" and not declined and not withdrawn,
    }
    events = [e for e in m.cross if holds[e]]
    return {"status": status, "events": events, "reason": reason, "reason_type": reason_type,
            "stage_name": a.get("stage_name"), "app": a}


def _values(p: dict, cur: dict, jobs: dict) -> dict[str, str | None]:
    a = cur.get("app")
    job = jobs.get(int(a["job_id"])) if a is not None and a.get("job_id") is not None else None
    applied = [t for t in (_ts(x.get("created_at")) for x in p["apps"]) if t is not None]

    def s(v: Any) -> str | None:
        return None if v is None else str(v)

    return {
        "profile_id": str(p["profile_id"]), "email": p["email"],
        "first_name": p["first_name"], "last_name": p["last_name"],
        "preferred_name": p["preferred_name"], "company": p["company"], "title": p["title"],
        "phone": p["phone"],
        "can_email": None if p["can_email"] is None else str(p["can_email"]).lower(),
        "created_at": _iso(p["created_at"]), "updated_at": _iso(p["updated_at"]),
        "last_activity_at": _iso(p["last_activity_at"]),
        "current_application_id": s(a["id"]) if a else None,
        "current_job_id": s(a.get("job_id")) if a else None,
        "current_stage_name": a.get("stage_name") if a else None,
        "current_status": a.get("status") if a else None,
        "current_job_name": job.get("name") if job else None,
        "current_department_id": s(job.get("department_id")) if job else None,
        "current_source_id": s(a.get("source_id")) if a else None,
        "current_source_name": a.get("_source_name") if a else None,
        "current_department_name": job.get("_department_name") if job else None,
        "current_office_name": job.get("_office_name") if job else None,
        "current_rejection_reason": cur["reason"],
        "last_applied_at": _iso(max(applied)) if applied else None,
        "application_count": str(len(p["apps"])),
    }


def _transform(v: str | None, f: Any, cfg: NormalizationConfig) -> str | None:
    for t in f.transforms:
        if v is None:
            break
        if t.name == "trim":
            v = v.strip(WHITESPACE)
        elif t.name == "lower":
            v = v.lower()
        elif t.name == "upper":
            v = v.upper()
        elif t.name == "title":
            v = " ".join(w[:1].upper() + w[1:] for w in v.lower().split(" "))
        elif t.name == "date":
            parsed = _ts(v)
            v = parsed.date().isoformat() if parsed else None
        elif t.name == "e164":
            v = reference_phone(v, cfg)
        elif t.name == "value_map":
            table = dict(t.values)
            v = table[v] if v in table and v != FALLBACK_KEY else table.get(FALLBACK_KEY, v)
    return v or None


def _happened(docs: dict[str, list[dict]], reasons: dict, rejections: dict,
              m: Mapping) -> dict[int, set[str]]:
    """Per application, the kinds of event that happened to it (the stream's definition, in
    plain Python over the sandbox's records): for the tags added on an event."""
    out: dict[int, set[str]] = defaultdict(set)
    quiet = {int(a["id"]) for a in docs["applications"] if a.get("status") in m.quiet_statuses}
    stages: dict[int, int] = defaultdict(int)
    for r in docs["application_stages"]:
        if r.get("entered_at"):
            stages[int(r["application_id"])] += 1
    for i in docs["interviews"]:
        if i.get("status") not in ("to_be_scheduled", "skipped"):
            out[int(i["application_id"])].add("interview_scheduled")
    declined = set()
    for o in docs["offers"]:
        app_id = int(o["application_id"])
        out[app_id].add("offer_extended")
        if o.get("status") == "Accepted":
            out[app_id].add("offer_accepted")
        elif o.get("status") == "Rejected":
            out[app_id].add("offer_declined")
            declined.add(app_id)
    for a in docs["applications"]:
        app_id = int(a["id"])
        out[app_id].add("new_application")
        if stages.get(app_id, 0) > 1:
            out[app_id].add("stage_change")
        if a.get("status") == "hired":
            out[app_id].add("hired")
        if a.get("status") == "rejected" and app_id not in declined:
            r = reasons.get(int((rejections.get(app_id) or {}).get("rejection_reason_id") or 0))
            name, kind = (r or {}).get("name"), ((r or {}).get("type") or {}).get("name")
            out[app_id].add("withdrawn" if kind in m.withdrawn_reason_types
                            or name in m.withdrawn_reasons else "rejected")
    return {k: v for k, v in out.items() if k not in quiet}


def _tags(p: dict, cur: dict, jobs: dict, m: Mapping,
          happened: dict[int, set[str]]) -> set[str]:
    raw: set[tuple[str, str | None]] = set()
    for e in cur["events"]:
        raw |= {(t, None) for t in m.cross[e]}
    for a in p["apps"]:
        for e in happened.get(int(a["id"]), ()):
            raw |= {(t, None) for t in m.on_event.get(e, ())}
    if cur["status"] == "in_process":
        raw.add((m.stage_tag(cur["stage_name"]), "stage"))
    apps = p["apps"] if m.job_scope == "all" else ([cur["app"]] if cur.get("app") else [])
    for a in apps:
        job = jobs.get(int(a["job_id"])) if a.get("job_id") is not None else None
        if job is not None:
            raw.add((m.job_tag(job.get("name"), job.get("id"), job.get("department_id"),
                               job.get("custom_fields"), job.get("_department_name"),
                               job.get("_office_name")), "job"))
    if cur["status"] == "rejected":
        raw.add((m.reason_tag(cur["reason"], cur["reason_type"]), "reason"))
    winners: dict[str, tuple[int, str]] = {}
    out: set[str] = set()
    for tag, family in raw:
        if not tag:
            continue
        rule = m.tag_rule(tag, family)
        if rule.group is None:
            out.add(tag)
        elif rule.group not in winners or (rule.rank, tag) < winners[rule.group]:
            winners[rule.group] = (rule.rank, tag)
    return out | {tag for _, tag in winners.values()}


def _managed(docs: dict[str, list[dict]], m: Mapping) -> tuple[set[str], dict[str, str | None]]:
    found: list[tuple[str, str | None]] = [
        (t, None) for ts in (*m.cross.values(), *m.on_event.values()) for t in ts]
    found += [(t, "stage") for t in m.stage_map.values() if t]
    stages = {d.get("name") for d in docs["job_interview_stages"]} | {
        a.get("stage_name") for a in docs["applications"]}
    found += [(m.stage_tag(s), "stage") for s in stages if s]
    found += [(m.job_tag(j.get("name"), j.get("id"), j.get("department_id"),
                         j.get("custom_fields"), j.get("_department_name"),
                         j.get("_office_name")), "job")
              for j in docs["jobs"]]
    found += [(t, "reason") for t in m.reason_map.values() if t]
    found += [(m.reason_tag(r.get("name"), (r.get("type") or {}).get("name")), "reason")
              for r in docs["rejection_reasons"]]
    categories: dict[str, str | None] = {}
    for tag, family in sorted(found, key=lambda x: (x[0] or "", x[1] is not None)):
        if tag and tag not in categories:
            categories[tag] = m.tag_rule(tag, family).category
    return set(categories), categories
