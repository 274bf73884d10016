"""The gateway: the Flask front door (JSON API, identity, and the web pages to come)."""

SERVICE = "gateway"
