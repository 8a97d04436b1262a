"""The emulated Keap REST API (v1 and v2): contacts, tags, custom fields, OAuth, REST hooks."""
