"""Realistic history at volume, bulk-loaded: ``pettycash history generate`` and the benchmark's seeding.

An organisation (regions, branches, users of every role with bearer tokens and active
authenticators), requisitions with their whole lives across every service, and a ledger of at
least the asked-for number of transfers, each table written with PostgreSQL ``COPY``; then the
floats' days, the ledger's balance check and the gateway's read models, derived by the
services' own code. Modules: ``plan`` (what is loaded), ``organisation``, ``services``
(requisition, approval, payment), ``ledger``, ``load`` (all of it, and its guards), ``cli``.
"""
