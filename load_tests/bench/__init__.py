"""``make bench``: the whole system under load, as production runs it, measured end to end.

``python -m load_tests.bench`` starts a production-like stack on its own databases
(``pettycash_bench_*``) and Redis database, bulk-loads realistic volume, runs locust headless
in stages (dashboard reads, requisition creation up to the knee, payments, whole chains),
measures a bare baseline in the same run, and writes a JSON and a Markdown report.

Modules: ``stack`` (the processes), the bulk load is ``pettycash.history``
(also ``pettycash history generate``); ``users`` (locust users),
``stages`` (one function per stage), ``lags`` (end-to-end lags from database timestamps),
``cpu`` (per-process CPU), ``baseline`` (no-op Celery and trivial Flask), ``report``.
"""
