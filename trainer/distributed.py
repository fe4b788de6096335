"""Scoring on Ray Data: a pool of actors that each load a model version once, then take one unit of work per
call (a row group of an archive for `classify`, a page of the pool for the worker's rescoring). Units are written
so that doing one twice changes nothing; a lost actor or node makes Ray fail the dataset, and the next attempt
runs only the units that did not finish."""

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from core.progress import Log

ATTEMPTS = 3
"""Runs of the pipeline within one command or job."""

LOCAL_RAY = "local"
"""ray.init's address for a new Ray of this process's own, whatever other clusters this machine has had."""


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """An existing cluster (ray://... or host:port), or None: a local Ray in this process."""
    actors: int | None = None
    """Scoring actors; None: one per GPU, else one per `cpus_per_actor` CPUs the cluster has to spare."""
    cpus_per_actor: float = 2.0
    """CPU threads each actor scores with (CPU clusters)."""
    reserve_cpus: float = 1.0
    """CPUs left to Ray itself and the driver on a cluster of 4 CPUs or more."""


@dataclass(frozen=True)
class ActorPlan:
    actors: int
    cpus: float
    gpus: float
    threads: int
    """torch threads per actor (0: leave torch's default, on GPUs)."""

    def describe(self) -> str:
        each = f"{self.gpus:g} GPU" if self.gpus else f"{self.cpus:g} CPU"
        return f"{self.actors} actor(s), {each} each"


def plan_actors(resources: dict[str, float], options: RayOptions) -> ActorPlan:
    """One actor per GPU; on CPUs, one per `cpus_per_actor` of the CPUs left after the reserve (kept for Ray's own
    tasks and the driver on clusters big enough to spare it)."""
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return ActorPlan(options.actors or gpus, cpus=1.0, gpus=1.0, threads=0)
    cpus = float(resources.get("CPU", 1))
    spare = cpus - (options.reserve_cpus if cpus >= 4 else 0.0)
    per_actor = min(options.cpus_per_actor, spare)
    if options.actors:
        per_actor = min(options.cpus_per_actor, max(spare / options.actors, 0.25))
    actors = options.actors or max(1, math.floor(spare / per_actor))
    return ActorPlan(actors, cpus=per_actor, gpus=0.0, threads=max(1, round(per_actor)))


@contextmanager
def ray_cluster(address: str | None) -> Iterator[dict[str, float]]:
    """Join the cluster at `address` (or the one this process already joined), or start a local Ray; yields the
    cluster's resources.

    With no address Ray itself would join the cluster named in /tmp/ray/ray_current_cluster (the last `ray start`,
    or a test cluster), which outlives a cluster killed before it shut down: ray.init then waits on an address that
    nobody answers. "local" always starts our own (`classify --ray-address` reads RAY_ADDRESS itself)."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(
            address=address or LOCAL_RAY,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
        started = True
    try:
        yield dict(ray.cluster_resources())  # type: ignore[no-untyped-call]
    finally:
        if started:
            ray.shutdown()


def map_on_actors(
    units: Sequence[dict[str, Any]],
    actor: type,
    arguments: dict[str, Any],
    plan: ActorPlan,
    on_result: Callable[[dict[str, Any]], None],
) -> None:
    """Each unit through `actor(**arguments)(batch of one unit)` on Ray Data's streaming executor; on_result is
    called with each result row as it lands."""
    import ray.data

    # Not a line per dataset started and finished, nor a warning that its progress bars are off (ours shows).
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    dataset = ray.data.from_items(list(units), override_num_blocks=len(units)).map_batches(
        actor,
        fn_constructor_kwargs=arguments | {"threads": plan.threads},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(plan.actors, len(units))),
        num_cpus=plan.cpus,
        num_gpus=plan.gpus,
    )
    for row in dataset.iter_rows():
        on_result(row)


def run_until_done(
    pending: Callable[[], list[dict[str, Any]]],
    actor: type,
    arguments: dict[str, Any],
    plan: ActorPlan,
    on_result: Callable[[dict[str, Any]], None],
    log: Log,
) -> int:
    """map_on_actors over what is pending, again after a lost actor or node (at most ATTEMPTS runs); an error of
    the scoring itself is raised at once. Returns the attempts made."""
    import ray

    attempts = 0
    while units := pending():
        attempts += 1
        try:
            map_on_actors(units, actor, arguments, plan, on_result)
        except ray.exceptions.RayError as error:
            if attempts >= ATTEMPTS or isinstance(error, ray.exceptions.UserCodeException):
                raise  # an error in the scoring itself would only repeat
            log(f"attempt {attempts} stopped ({type(error).__name__}); scoring what is missing again")
    return attempts


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds."""
    return value.item() if hasattr(value, "item") else value


def set_threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
