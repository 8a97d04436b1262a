"""The emulated Greenhouse Harvest v3 API: its token endpoint and the listed entities."""
