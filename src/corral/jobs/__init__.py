"""The job manager's pure core: the task state machine and the batch and service reconcilers.

Everything here is purely computational: it takes jobs, tasks and ``now`` and returns new values or
actions. The control layer applies the actions, persists them and talks to agents.
"""

from corral.jobs.actions import Action, CreateTask, FinishJob, FinishTask, KillTask, Reconciliation
from corral.jobs.config import JobManagerConfig
from corral.jobs.reconcile import reconcile

__all__ = [
    "Action",
    "CreateTask",
    "FinishJob",
    "FinishTask",
    "JobManagerConfig",
    "KillTask",
    "Reconciliation",
    "reconcile",
]
