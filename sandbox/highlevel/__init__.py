"""The emulated HighLevel (LeadConnector) API v2: location, contacts, opportunities, search."""
