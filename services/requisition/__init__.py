"""The requisition service: requests for money and their lifecycle."""

SERVICE = "requisition"
