"""The ledger service: a double-entry, append-only ledger of every movement of money."""

SERVICE = "ledger"
