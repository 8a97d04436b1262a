"""HighLevel location custom values in the world: the merge values (`{{ custom_values.x }}`)
a recruiting location keeps for its templates (signature, careers page, calendar link ...).

They draw from their own random stream (`<seed>/highlevel-custom-values`) and their own
HighLevel id block (ID_BASE), so a world's other records are the same as before custom values
existed: same seed, same records. The world's life does not edit them; the API does.
"""

from __future__ import annotations

import random
from typing import Any

from sandbox.credentials import HIGHLEVEL_LOCATION_ID
from sandbox.highlevel.location import value_key
from sandbox.records import highlevel_id

# HighLevel id block of the generated custom values (API-created ones continue above)
ID_BASE = 12 * 10 ** 12
# (name, candidate values): the world picks one of each
CUSTOM_VALUES = [
    ("Company Name", ["Northwind Talent", "Bluefin Recruiting", "Summit Search Partners"]),
    ("Careers Page", ["https://careers.example.com", "https://jobs.example.com/open-roles"]),
    ("Recruiting Email", ["recruiting@example.com", "talent@example.com"]),
    ("Interview Calendar Link", ["https://calendar.example.com/interviews",
                                 "https://book.example.com/recruiter"]),
    ("Office Address", ["100 Market St, San Francisco, CA", "20 W 34th St, New York, NY",
                        "1 King St W, Toronto, ON"]),
    ("Benefits Summary", ["Health, dental, 401k match, 25 days off",
                          "Remote-first, learning budget, equity"]),
]


def custom_value_docs(seed: int) -> list[tuple[dict[str, Any], int]]:
    """The world's custom values with their id counter values."""
    rng = random.Random(f"{seed}/highlevel-custom-values")
    out = []
    for k, (name, values) in enumerate(CUSTOM_VALUES):
        n = ID_BASE + 1 + k
        out.append(({"id": highlevel_id(n), "name": name, "fieldKey": value_key(name),
                     "value": rng.choice(values), "locationId": HIGHLEVEL_LOCATION_ID}, n))
    return out
