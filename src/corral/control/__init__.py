"""The imperative shell of the master: the loops that apply the core's decisions.

Side effects live here: the clock, ids, the write-behind to the store, messages to agents and the
event stream. Decisions are made by ``corral.jobs`` and ``corral.scheduler``, over plain data.
"""
