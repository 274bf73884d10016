"""The composition root: the ``pettycash`` command that runs and operates the services."""
