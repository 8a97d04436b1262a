"""Synthetic people for the sandbox world: names, emails, phones, with the mess of real exports.

Every kind of mess is drawn with a documented probability (the module constants below), so tests
and downstream checks know what to expect. Emails and phones never reach real people: domains use
the reserved `.example` top-level domain, phones the ranges set aside for fiction (US 555-01xx,
UK 020 7946 0xxx and 07700 900xxx, France 01 99 00, Australia 0491 570).

Distinct people never share an email: every generated address ends with digits derived from the
person's index, so the only email collisions in the world are the intended duplicates.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

# -- messiness of candidate records (fractions of all generated candidate records) -----------
DUPLICATE_FRACTION = 0.03        # a second candidate record for an earlier person
NO_EMAIL_FRACTION = 0.04         # no email address at all
INVALID_EMAIL_FRACTION = 0.02    # syntactically invalid email (missing @, space, bad domain)
MIXED_CASE_EMAIL_FRACTION = 0.10  # valid email typed with capitals (Ana.Lopez@Gmail.example)
PADDED_EMAIL_FRACTION = 0.02     # valid email with surrounding whitespace
SECOND_EMAIL_FRACTION = 0.10     # a second (work) email address
NO_PHONE_FRACTION = 0.15         # no phone number
SECOND_PHONE_FRACTION = 0.08     # a second phone number
PADDED_NAME_FRACTION = 0.03      # leading/trailing spaces around first or last name
SHOUTED_NAME_FRACTION = 0.02     # name typed in capitals (or all lower case)
# name scripts; the rest are plain ASCII names
NAME_STYLE_WEIGHTS = {
    "ascii": 0.80,
    "accented": 0.10,     # precomposed accents: José, Łukasz, Müller
    "cjk": 0.04,          # 王 伟, 佐藤 陽翔, 김 민준
    "arabic": 0.02,       # محمد حداد
    "combining": 0.02,    # accents as combining marks (NFD): "Jose\u0301"
    "nfkc": 0.02,         # forms NFKC folds: fullwidth letters, ligatures
}
# phone formats, by weight (US, UK, FR, AU; national and international; junk)
PHONE_FORMAT_WEIGHTS = {
    "us_intl_paren": 0.16,   # +1 (415) 555-0134
    "us_dots": 0.12,         # 415.555.0134
    "us_paren": 0.12,        # (415) 555-0134
    "us_dashes": 0.12,       # 415-555-0134
    "us_digits": 0.08,       # 4155550134
    "us_e164": 0.10,         # +14155550134
    "us_one_dash": 0.04,     # 1-415-555-0134
    "us_extension": 0.04,    # (415) 555-0134 x123 / 415-555-0134 ext. 22
    "us_letters": 0.02,      # 1-415-555-HIRE
    "uk_00": 0.04,           # 0044 20 7946 0958
    "uk_intl": 0.04,         # +44 20 7946 0958
    "uk_mobile": 0.05,       # 07700 900123
    "fr_intl": 0.03,         # +33 1 99 00 12 34
    "au_mobile": 0.02,       # 0491 570 156
    "junk": 0.02,            # n/a, call me, 000
}
# the candidate custom field "Candidate Status" (short_text): what recruiters typed into it
STATUS_FIELD_KEY = "candidate_status"
STATUS_FIELD_NAME = "Candidate Status"
STATUS_VALUE_WEIGHTS = {"none": 0.40, "free_text": 0.25, "stage_code": 0.20, "timestamp": 0.15}

FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Sandra", "Mark", "Ashley", "Steven", "Emily", "Andrew", "Michelle", "Joshua", "Amanda",
    "Kevin", "Melissa", "Brian", "Stephanie", "Priya", "Rahul", "Aisha", "Omar", "Mei", "Hiro",
    "Olga", "Ivan", "Lucas", "Emma", "Noah", "Olivia", "Liam", "Ava", "Ethan", "Sophia", "Mateo",
    "Isabella", "Kwame", "Amara", "Tariq", "Leila", "Arjun", "Ananya", "Sven", "Ingrid",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Hill", "Campbell", "Mitchell", "Patel", "Shah", "Okafor", "Mensah", "Nguyen",
    "Tanaka", "Kowalski", "Novak", "Ivanova", "Schmidt", "Fischer", "Rossi", "Bianchi", "Silva",
    "Santos", "Khan", "Ali", "Haddad", "O'Brien", "Murphy", "Kelly", "Larsen", "Berg",
]
# (display form, ASCII romanization for the email local part)
ACCENTED_FIRST = [("José", "jose"), ("María", "maria"), ("François", "francois"),
                  ("Zoë", "zoe"), ("Björn", "bjorn"), ("Søren", "soren"), ("Łukasz", "lukasz"),
                  ("Małgorzata", "malgorzata"), ("Chloé", "chloe"), ("Renée", "renee"),
                  ("Ángel", "angel"), ("İlkay", "ilkay"), ("Dvořák", "dvorak"),
                  ("Jürgen", "jurgen"), ("Inês", "ines"), ("Thúy", "thuy")]
ACCENTED_LAST = [("Núñez", "nunez"), ("Müller", "muller"), ("Gonçalves", "goncalves"),
                 ("Sánchez", "sanchez"), ("Dvořák", "dvorak"), ("Şahin", "sahin"),
                 ("Øvergård", "overgard"), ("Lefèvre", "lefevre"), ("Kröger", "kroger"),
                 ("Nguyễn", "nguyen"), ("Wójcik", "wojcik"), ("Ibáñez", "ibanez"),
                 ("Åberg", "aberg"), ("Čapek", "capek")]
CJK_NAMES = [(("伟", "wei"), ("王", "wang")), (("芳", "fang"), ("李", "li")),
             (("秀英", "xiuying"), ("张", "zhang")), (("陽翔", "haruto"), ("佐藤", "sato")),
             (("結衣", "yui"), ("鈴木", "suzuki")), (("민준", "minjun"), ("김", "kim")),
             (("서연", "seoyeon"), ("이", "lee")), (("静", "jing"), ("刘", "liu")),
             (("蓮", "ren"), ("高橋", "takahashi")), (("娜", "na"), ("陈", "chen"))]
ARABIC_NAMES = [(("محمد", "mohammed"), ("حداد", "haddad")),
                (("فاطمة", "fatima"), ("العلي", "alali")),
                (("أحمد", "ahmed"), ("منصور", "mansour")),
                (("ليلى", "layla"), ("خوري", "khoury")),
                (("يوسف", "youssef"), ("نصر", "nasr"))]
# forms that NFKC folds to plain letters: fullwidth Latin and ligatures
NFKC_FIRST = [("Ｊｏｈｎ", "john"), ("Steﬀen", "steffen"), ("Raﬁ", "rafi"), ("Ａｎｎａ", "anna"),
              ("Eﬃe", "effie"), ("Ｍａｒｋ", "mark")]

EMAIL_DOMAINS = ["gmail.example", "gmail.example", "gmail.example", "outlook.example",
                 "yahoo.example", "icloud.example", "proton.example", "hotmail.example",
                 "fastmail.example", "example.com", "example.org", "example.net"]
WORK_DOMAINS = ["acme.example", "globex.example", "initech.example", "umbrella.example",
                "hooli.example", "piedpiper.example", "stark.example", "wayne.example"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Pied Piper",
             "Stark Industries", "Wayne Enterprises", "Soylent", "Wonka Industries",
             "Cyberdyne", "Tyrell Corp", None, None, None]
TITLES = ["Software Engineer", "Senior Software Engineer", "Data Analyst", "Product Manager",
          "Account Executive", "Recruiter", "Designer", "Customer Success Manager",
          "Sales Development Rep", "Engineering Manager", "Data Scientist", "QA Engineer",
          "Marketing Manager", "Student", None, None]
TIME_ZONES = ["Eastern Time (US & Canada)", "Pacific Time (US & Canada)",
              "Central Time (US & Canada)", "London", "Paris", "Berlin", "Tokyo", "Sydney", None]
CANDIDATE_TAGS = ["Referral", "Python", "Java", "Sales", "Leadership", "Boomerang", "Diversity",
                  "Silver Medalist", "Do Not Contact", "Relocation"]
FREE_TEXT_STATUS = ["waiting on references", "Strong fit!!", "call back after holidays",
                    "interested - follow up", "not now", "  maybe later ", "see notes",
                    "ghosted?", "pending visa check", "Offer discussion", "TBD"]
STAGE_CODES = ["PH_SCRN", "ONSITE-2", "TECH_INT", "REF_CHK", "OFFER-EXT", "APP_REV",
               "RS-1", "onsite", "PHONE SCREEN", "HIRED", "REJ"]
STREETS = ["Main St", "Oak Ave", "Market St", "High Street", "Rue de Rivoli", "King St W",
           "Elm Rd", "Sunset Blvd"]
CITIES = ["San Francisco, CA 94105", "Austin, TX 78701", "New York, NY 10001",
          "London EC1A 1BB", "Paris 75001", "Toronto, ON M5H 2N2", "Chicago, IL 60601"]


@dataclass
class Person:
    """One human being, as the world knows them before any system mangles the record."""

    index: int
    first: str
    last: str
    ascii_first: str
    ascii_last: str
    email: str | None              # as the person types it (may be invalid, mixed case, padded)
    email_kind: str                # valid | invalid | none
    work_email: str | None
    phones: list[str] = field(default_factory=list)
    phone_kinds: list[str] = field(default_factory=list)
    name_style: str = "ascii"
    company: str | None = None
    title: str | None = None
    time_zone: str | None = None
    city: str | None = None
    flags: list[str] = field(default_factory=list)   # messiness kinds applied (padded_name ...)


def choice(rng: random.Random, items: Sequence[T]) -> T:
    """`rng.choice`, about three times cheaper (the generator calls it millions of times)."""
    return items[int(rng.random() * len(items))]


def randrange(rng: random.Random, start: int, stop: int | None = None) -> int:
    """`rng.randrange(start[, stop])` for the generator's hot path."""
    if stop is None:
        start, stop = 0, start
    return start + int(rng.random() * (stop - start))


def pick_weighted(rng: random.Random, weights: dict[str, float]) -> str:
    """A key of `weights`, drawn by weight (deterministic for a given rng state)."""
    x = rng.random() * sum(weights.values())
    for key, w in weights.items():
        x -= w
        if x < 0:
            return key
    return key


def _names(rng: random.Random, style: str) -> tuple[str, str, str, str]:
    if style == "accented":
        (f, fa), (la, laa) = choice(rng, ACCENTED_FIRST), choice(rng, ACCENTED_LAST)
        return f, la, fa, laa
    if style == "cjk":
        (f, fa), (la, laa) = choice(rng, CJK_NAMES)
        return f, la, fa, laa
    if style == "arabic":
        (f, fa), (la, laa) = choice(rng, ARABIC_NAMES)
        return f, la, fa, laa
    if style == "combining":
        (f, fa), (la, laa) = choice(rng, ACCENTED_FIRST), choice(rng, ACCENTED_LAST)
        return unicodedata.normalize("NFD", f), unicodedata.normalize("NFD", la), fa, laa
    if style == "nfkc":
        f, fa = choice(rng, NFKC_FIRST)
        la = choice(rng, LAST_NAMES)
        return f, la, fa, _ascii(la)
    f, la = choice(rng, FIRST_NAMES), choice(rng, LAST_NAMES)
    return f, la, _ascii(f), _ascii(la)


def _ascii(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum() and c.isascii())


def _local_part(rng: random.Random, first: str, last: str, index: int) -> str:
    # the trailing digits encode the person's index: distinct people never share an address
    n = index * 7 + randrange(rng, 7)
    style = randrange(rng, 5)
    if style == 0:
        return f"{first}.{last}{n}"
    if style == 1:
        return f"{first[:1]}{last}{n}"
    if style == 2:
        return f"{first}_{last}{n}"
    if style == 3:
        return f"{last}.{first}{n}"
    return f"{first}{n}"


def _invalid(rng: random.Random, local: str, domain: str) -> str:
    kind = randrange(rng, 6)
    if kind == 0:
        return f"{local}{domain}"                       # missing @
    if kind == 1:
        return f"{local[:3]} {local[3:]}@{domain}"    # a space in the local part
    if kind == 2:
        return f"{local}@@{domain}"
    if kind == 3:
        return f"{local}@{domain.split('.')[0]}"       # domain without a dot
    if kind == 4:
        return f"{local}@{domain.replace('.', '..')}"
    return f"{local}@"


def _mixed_case(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    parts = [p[:1].upper() + p[1:] for p in local.split(".")]
    domain = domain[:1].upper() + domain[1:] if rng.random() < 0.5 else domain
    return ".".join(parts) + "@" + domain


def make_email(rng: random.Random, p_first: str, p_last: str, index: int,
               flags: list[str]) -> tuple[str | None, str]:
    """(email as typed, kind) for a new person."""
    x = rng.random()
    if x < NO_EMAIL_FRACTION:
        flags.append("no_email")
        return None, "none"
    local = _local_part(rng, p_first or "x", p_last or "y", index)
    domain = choice(rng, EMAIL_DOMAINS)
    if x < NO_EMAIL_FRACTION + INVALID_EMAIL_FRACTION:
        flags.append("invalid_email")
        return _invalid(rng, local, domain), "invalid"
    email = f"{local}@{domain}"
    y = rng.random()
    if y < MIXED_CASE_EMAIL_FRACTION:
        flags.append("mixed_case_email")
        email = _mixed_case(rng, email)
    elif y < MIXED_CASE_EMAIL_FRACTION + PADDED_EMAIL_FRACTION:
        flags.append("padded_email")
        email = choice(rng, [" ", "  ", "\t"]) + email + choice(rng, ["", " "])
    return email, "valid"


def make_phone(rng: random.Random) -> tuple[str, str]:
    """(phone as typed, format name) in one of the formats of PHONE_FORMAT_WEIGHTS."""
    kind = pick_weighted(rng, PHONE_FORMAT_WEIGHTS)
    area = choice(rng, ["415", "212", "312", "512", "617", "206", "303"])
    line = f"01{randrange(rng, 100):02d}"
    if kind == "us_intl_paren":
        return f"+1 ({area}) 555-{line}", kind
    if kind == "us_dots":
        return f"{area}.555.{line}", kind
    if kind == "us_paren":
        return f"({area}) 555-{line}", kind
    if kind == "us_dashes":
        return f"{area}-555-{line}", kind
    if kind == "us_digits":
        return f"{area}555{line}", kind
    if kind == "us_e164":
        return f"+1{area}555{line}", kind
    if kind == "us_one_dash":
        return f"1-{area}-555-{line}", kind
    if kind == "us_extension":
        ext = randrange(rng, 1, 999)
        return choice(rng, [f"({area}) 555-{line} x{ext}", f"{area}-555-{line} ext. {ext}"]), kind
    if kind == "us_letters":
        return f"1-{area}-555-{choice(rng, ['HIRE', 'JOBS', 'WORK', 'TEAM'])}", kind
    uk = f"{randrange(rng, 1000):03d}"
    if kind == "uk_00":
        return f"0044 20 7946 0{uk}", kind
    if kind == "uk_intl":
        return f"+44 20 7946 0{uk}", kind
    if kind == "uk_mobile":
        return f"07700 900{uk}", kind
    if kind == "fr_intl":
        return f"+33 1 99 00 {randrange(rng, 100):02d} {randrange(rng, 100):02d}", kind
    if kind == "au_mobile":
        return f"0491 570 {randrange(rng, 100, 160)}", kind
    return choice(rng, ["n/a", "call me", "000", "-", "see resume"]), kind


def e164(phone: str) -> str | None:
    """The E.164 form of a generated phone, as a CRM that normalizes phones would store it."""
    digits = "".join(c for c in phone.split(" x")[0].split(" ext")[0] if c.isdigit())
    if phone.strip().startswith("0044"):
        return "+" + digits[2:]
    if phone.strip().startswith("+"):
        return "+" + digits
    if phone.startswith("07700"):
        return "+44" + digits[1:]
    if phone.startswith("0491"):
        return "+61" + digits[1:]
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return None


def _pad(rng: random.Random, name: str) -> str:
    return choice(rng, [" ", "  ", ""]) + name + choice(rng, [" ", "", "  "])


def make_person(rng: random.Random, index: int) -> Person:
    """A new, distinct person: the messiness is drawn with the module's fractions."""
    flags: list[str] = []
    style = pick_weighted(rng, NAME_STYLE_WEIGHTS)
    first, last, afirst, alast = _names(rng, style)
    if style != "ascii":
        flags.append(f"name_{style}")
    x = rng.random()
    if x < PADDED_NAME_FRACTION:
        flags.append("padded_name")
        first, last = _pad(rng, first), _pad(rng, last)
        if first == first.strip() and last == last.strip():
            first = " " + first
    elif x < PADDED_NAME_FRACTION + SHOUTED_NAME_FRACTION:
        flags.append("shouted_name")
        first, last = (first.upper(), last.upper()) if rng.random() < 0.7 else (
            first.lower(), last.lower())
    email, kind = make_email(rng, afirst, alast, index, flags)
    work = None
    if kind == "valid" and rng.random() < SECOND_EMAIL_FRACTION:
        flags.append("second_email")
        work = f"{afirst[:1]}{alast}{index}@{choice(rng, WORK_DOMAINS)}"
    phones: list[str] = []
    phone_kinds: list[str] = []
    if rng.random() >= NO_PHONE_FRACTION:
        for _ in range(2 if rng.random() < SECOND_PHONE_FRACTION else 1):
            number, fmt = make_phone(rng)
            phones.append(number)
            phone_kinds.append(fmt)
    else:
        flags.append("no_phone")
    return Person(
        index=index, first=first, last=last, ascii_first=afirst, ascii_last=alast,
        email=email, email_kind=kind, work_email=work, phones=phones, phone_kinds=phone_kinds,
        name_style=style, company=choice(rng, COMPANIES), title=choice(rng, TITLES),
        time_zone=choice(rng, TIME_ZONES), city=choice(rng, CITIES), flags=flags,
    )


def email_variant(rng: random.Random, email: str) -> str:
    """The same address as another system or a second application typed it: case or spaces
    differ, the normalized (trimmed, lower-cased) address does not."""
    base = email.strip()
    for _ in range(4):
        kind = randrange(rng, 4)
        if kind == 0:
            out = base.upper() if base != base.upper() else base.lower()
        elif kind == 1:
            out = _mixed_case(rng, base.lower())
        elif kind == 2:
            out = " " + base + " "
        else:
            out = base.lower() + "  "
        if out != email:
            return out
    return email + " "


def status_value(rng: random.Random, when: str) -> tuple[str, str | None]:
    """(kind, value) of the "Candidate Status" custom field: free text, a stage code, a
    timestamp in one of several formats, or nothing. `when` is an ISO timestamp to vary."""
    kind = pick_weighted(rng, STATUS_VALUE_WEIGHTS)
    if kind == "free_text":
        return kind, choice(rng, FREE_TEXT_STATUS)
    if kind == "stage_code":
        return kind, choice(rng, STAGE_CODES)
    if kind == "timestamp":
        date, time = when[:10], when[11:16]
        y, m, d = date.split("-")
        return kind, choice(rng, [
            when[:19] + "Z", f"{m}/{d}/{y} {time}", date, f"{d}.{m}.{y}", when[:16].replace(
                "T", " ")])
    return kind, None


def address(rng: random.Random, person: Person) -> str:
    return f"{randrange(rng, 1, 999)} {choice(rng, STREETS)}, {person.city}"
