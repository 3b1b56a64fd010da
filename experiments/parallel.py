"""Independent trainings (seeds, grid points) in parallel: joblib locally, dask.distributed
on a cluster, with results identical to a serial run.

``run_tasks(fn, tasks, jobs=1, scheduler=None)`` returns ``[fn(*t) for t in tasks]``, in
order, whichever way it ran:

- ``jobs=1`` and no scheduler: serially, in this process;
- ``jobs=N`` (``-1``: every core): joblib's process pool (loky), ``N`` workers;
- ``scheduler="tcp://host:8786"``: a ``dask.distributed.Client`` on that scheduler; each
  worker must be able to import this project (run it from the repository or install it).

Identity with the serial run holds because a task carries everything that decides its
numbers (data selection, seed, hyperparameters): workers load the data themselves and
every random draw comes from generators seeded by the task, never from process state.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple


def run_tasks(fn: Callable, tasks: Sequence[Tuple], jobs: int = 1, scheduler: Optional[str] = None,
              log: Optional[Callable[[str], None]] = None) -> List[Any]:
    """``[fn(*task) for task in tasks]``, serially, in joblib processes or on a dask cluster.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name).
    tasks : sequence of tuple
        The positional arguments of each call; each must be picklable.
    jobs : int, default=1
        Local worker processes (joblib); 1 runs serially, -1 uses every core.
    scheduler : str, optional
        Address of a dask.distributed scheduler; takes precedence over ``jobs``.
    log : callable, optional
        Told how the tasks run.
    """
    tasks = [tuple(t) for t in tasks]
    if not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ValueError(f"run_tasks: jobs must be a positive int or -1, got {jobs!r}")
    if scheduler:
        return _dask(fn, tasks, scheduler, log)
    if jobs == 1 or len(tasks) <= 1:
        if log is not None and tasks:
            log(f"running {len(tasks)} training(s) serially")
        return [fn(*t) for t in tasks]
    from joblib import Parallel, delayed

    if log is not None:
        log(f"running {len(tasks)} trainings in {jobs if jobs > 0 else 'all'} joblib processes")
    return list(Parallel(n_jobs=jobs)(delayed(fn)(*t) for t in tasks))


def _dask(fn: Callable, tasks: List[Tuple], address: str, log) -> List[Any]:
    try:
        from distributed import Client
    except ImportError as err:  # an optional dependency: say how to get it
        raise ImportError("--scheduler needs dask.distributed: pip install 'distributed'") from err
    with Client(address, timeout="30s") as client:
        workers = len(client.scheduler_info().get("workers", {}))
        if log is not None:
            log(f"running {len(tasks)} trainings on the dask scheduler {address} ({workers} workers)")
        futures = [client.submit(fn, *t, pure=False) for t in tasks]
        return client.gather(futures)
