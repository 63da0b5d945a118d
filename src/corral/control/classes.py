"""Each job as the scheduler sees it (a ``JobClass``), worked out once per job version and shared: the
scheduler shell describes pending work with it, and the state derives a loaded task's footprint from it —
the same derivation the scheduler charges when it places a task (``JobClass.footprint``)."""

from __future__ import annotations

from corral.domain.job import Container, Job
from corral.scheduler import Cluster, JobClass


class JobClasses:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._classes: dict[str, tuple[Job, JobClass]] = {}

    def of(self, job: Job, version: int | None = None) -> JobClass:
        """The class of the job's tasks of ``version`` (default: the current one). A task of another version
        (an old-version replacement during canaries, or one loaded mid-rollout) is its own class, keyed
        ``<job>@v<n>``: its resources and constraints are its version's."""
        if version is not None and version != job.version:
            return self._of_version(job, version)
        cached = self._classes.get(job.id)
        if cached is not None and cached[0] is job:
            return cached[1]
        cls = self._build(job, job.id, job.descriptor.container)
        self._classes[job.id] = (job, cls)
        return cls

    def _of_version(self, job: Job, version: int) -> JobClass:
        key = class_key(job.id, version)
        cached = self._classes.get(key)
        if cached is not None and cached[0] is job:
            return cached[1]
        cls = self._build(job, key, job.container_of(version))
        self._classes[key] = (job, cls)
        return cls

    def _build(self, job: Job, key: str, c: Container) -> JobClass:
        d = job.descriptor
        size = d.batch.size if d.batch is not None else (d.service.capacity.desired if d.service else 1)
        return JobClass(
            job_id=key,
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

    def forget(self, job_id: str) -> None:
        self._classes.pop(job_id, None)
        for key in [k for k in self._classes if k.startswith(job_id + "@v")]:
            del self._classes[key]

    def keep_only(self, job_ids: set[str]) -> None:
        self._classes = {k: v for k, v in self._classes.items() if k.partition("@v")[0] in job_ids}

    def __len__(self) -> int:
        return len(self._classes)


def class_key(job_id: str, version: int) -> str:
    return f"{job_id}@v{version}"
