"""Database plumbing shared by every service: engines, sessions, unit of work, types."""
