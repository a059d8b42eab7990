"""Which failures a run survives by restarting its actors from the last checkpoint.

An actor that died (OOM, a crashed engine, a lost node), a weight sync that failed, a timeout
or a rollout made with stale weights all leave the run's state on disk intact: the driver
tears every actor down, starts them again and resumes from the newest complete checkpoint.
Configuration and resource errors are not retried: a restart would fail the same way.
"""

from __future__ import annotations


def is_recoverable(err: BaseException) -> bool:
    import ray.exceptions as rex

    from capo_ray.driver.trainer import StaleRolloutError
    from capo_ray.workers.weight_sync import WeightSyncError

    recoverable = (
        rex.RayActorError,
        rex.WorkerCrashedError,
        rex.NodeDiedError,
        rex.ObjectLostError,
        rex.OutOfMemoryError,
        rex.GetTimeoutError,
        WeightSyncError,
        StaleRolloutError,
    )
    if isinstance(err, recoverable):
        return True
    # A task error wraps the actor's own exception: judge by the cause.
    cause = getattr(err, "cause", None)
    return cause is not None and cause is not err and is_recoverable(cause)
