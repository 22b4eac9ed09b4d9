"""Threshold webhooks: endpoints, the transactional outbox, signing and delivery."""
