"""The contracts between services: names, queues, routes, envelope, payloads, money."""
