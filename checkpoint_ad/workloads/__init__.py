"""Workloads: the built-in chain and graph models that experiments, `compare` and `recommend`
run by name, and what their size parameters are (:mod:`.spec`)."""
