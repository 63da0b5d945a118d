"""Each job as the scheduler sees it (a ``JobClass``), worked out once per job version and shared: the
scheduler shell describes pending work with it, and the state derives a loaded task's footprint from it —
the same derivation the scheduler charges when it places a task (``JobClass.footprint``)."""

from __future__ import annotations

from corral.domain.job import Job
from corral.scheduler import Cluster, JobClass


class JobClasses:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._classes: dict[str, tuple[Job, JobClass]] = {}

    def of(self, job: Job) -> JobClass:
        cached = self._classes.get(job.id)
        if cached is not None and cached[0] is job:
            return cached[1]
        d = job.descriptor
        c = d.container
        size = d.batch.size if d.batch is not None else (d.service.capacity.desired if d.service else 1)
        cls = JobClass(
            job_id=job.id,
            group=d.capacity_group,
            request=c.resources.vector,
            created_at=job.created_at,
            ports=c.resources.ports,
            sg_code=self.cluster.sg_code(c.security.security_groups),
            image=c.image.reference,
            size=size,
            hard=c.hard_constraints,
            soft=c.soft_constraints,
        )
        self._classes[job.id] = (job, cls)
        return cls

    def forget(self, job_id: str) -> None:
        self._classes.pop(job_id, None)

    def keep_only(self, job_ids: set[str]) -> None:
        self._classes = {k: v for k, v in self._classes.items() if k in job_ids}

    def __len__(self) -> int:
        return len(self._classes)
