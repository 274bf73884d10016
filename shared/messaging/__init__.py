"""Messaging shared by every service: Celery app, outbox and relay, inbox, dead letters."""
