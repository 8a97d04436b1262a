"""Outbound webhooks: the change outbox in the world file, the events, the delivery worker."""
