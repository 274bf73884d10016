"""Fault runs: the whole stack on its own PostgreSQL and Redis, a seeded fault schedule, then the invariants.

``pettycash chaos`` (:mod:`pettycash.chaos.cli`) runs seeds one after another; each seed
(:mod:`pettycash.chaos.run`) starts a cluster and a Redis server of its own
(:mod:`~pettycash.chaos.cluster`), every role under the supervisor's restart logic
(:mod:`~pettycash.chaos.stack`), clients that drive whole requisition chains over HTTP
(:mod:`~pettycash.chaos.workload`), and the faults its seed schedules
(:mod:`~pettycash.chaos.faults`); once the system is quiet it checks the promises of the
issue against the services' databases (:mod:`~pettycash.chaos.invariants`) and reports them
(:mod:`~pettycash.chaos.report`).
"""
