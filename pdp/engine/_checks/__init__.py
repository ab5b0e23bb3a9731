"""One module per policy type, named after the type, each defining its check
and ``POLICY_TYPE``, its registry entry. The registry (``pdp.engine._registry``)
finds every module here: a new type is a new module, nothing else."""
