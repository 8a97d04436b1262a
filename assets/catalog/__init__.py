"""The SQL catalog over every backup: views.py (the view definitions, the in-memory catalog and
the saved catalog.duckdb), read_only.py (the statement check of `talentvault sql`), sql_door.py
(the catalog as people query it, confined to the backup files) and asset.py (the Dagster asset
that refreshes catalog.duckdb)."""
