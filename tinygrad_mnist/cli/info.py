"""``tinygrad-mnist info``: versions, threads, BLAS, where the data is and whether it verifies, and
which installed packages differ from the lock file the test suite passed with.

    tinygrad-mnist info
    tinygrad-mnist info --data-dir ~/data --json
"""

from __future__ import annotations

import argparse
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..data.idx import IDXFormatError, read_bytes
from ..data.mnist import MNIST_MD5, MNISTNotFoundError, find_mnist, mnist_files, source_name
from ..types import PathLike
from .common import DefaultsFormatter, Reporter, add_output_flags, environment


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info", help="versions, threads, BLAS, and where the data is and whether it verifies",
        description="Describe this installation: package versions, CPU threads and numpy's BLAS, "
                    "and the MNIST folder that would be used (checked by MD5 unless --no-verify). "
                    "Exit status: 0 (also when MNIST is absent; the report says so), 2 usage error.",
        formatter_class=DefaultsFormatter)
    p.add_argument("--data-dir", default=None, help="MNIST folder to look at (else $TINYGRAD_MNIST_DATA, "
                   "else the cache directory)")
    p.add_argument("--no-verify", action="store_true", help="do not check the files' MD5")
    p.add_argument("--lock", default=None, metavar="FILE",
                   help=f"lock file to compare the installed versions with (default: {LOCK_NAME} in the checkout "
                        "the package runs from; a wheel install has none)")
    add_output_flags(p)
    p.set_defaults(func=run_info)
    return p


def data_report(data_dir: Optional[PathLike] = None, verify: bool = True) -> dict:
    """Where MNIST is (or why not), what it is, and whether every file's MD5 matches."""
    try:
        root = find_mnist(data_dir)
    except MNISTNotFoundError as err:
        return {"found": False, "message": str(err)}
    found = mnist_files(root)
    report = {"found": True, "path": str(root), "files": {r: str(p) for r, p in found.items()}}
    try:
        report["name"] = source_name(root)
        if verify:
            import hashlib

            bad = [r for r, p in found.items() if hashlib.md5(read_bytes(p)).hexdigest() != MNIST_MD5[r]]
            report["verified"] = not bad
            if bad:
                report["mismatch"] = [str(found[r]) for r in bad]
    except (IDXFormatError, OSError) as err:
        report["verified"] = False
        report["error"] = str(err)
    return report


LOCK_NAME = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def default_lock_path() -> Optional[Path]:
    """``requirements.lock`` at the root of the checkout this package runs from, or None.

    The lock lives in the repository, not in the wheel: a package installed from a wheel sits in
    site-packages, whose parent holds no lock file."""
    path = Path(__file__).resolve().parents[2] / LOCK_NAME
    return path if path.is_file() else None


def read_lock(path: PathLike) -> Dict[str, str]:
    """The ``name==version`` pins of a pip-compile lock file, names normalised (PEP 503).

    Comments, ``# via`` annotations, options and environment markers are ignored."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def _same_version(installed: str, locked: str) -> bool:
    """PEP 440 ``==locked``: a lock without a local label also matches ``2.13.0+cpu``."""
    return installed == locked or ("+" not in locked and installed.split("+")[0] == locked)


def lock_report(path: Optional[PathLike]) -> Dict[str, Any]:
    """The installed version of every package pinned in the lock file ``path`` against its pin.

    Returns ``{"found": False}`` when ``path`` is None; else ``path``, ``count`` (pins) and
    ``differ``: a list of ``{"name", "installed" (None when absent), "lock"}``."""
    if path is None:
        return {"found": False}
    pins = read_lock(path)
    differ = []
    for name, locked in sorted(pins.items()):
        try:
            installed: Optional[str] = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or not _same_version(installed, locked):
            differ.append({"name": name, "installed": installed, "lock": locked})
    return {"found": True, "path": str(path), "count": len(pins), "differ": differ}


def lock_lines(report: Dict[str, Any]) -> List[str]:
    """``report`` (from :func:`lock_report`) as the lines ``info`` prints."""
    if not report["found"]:
        return ["no lock file found (installed from a wheel?)"]
    if not report["differ"]:
        return [f"{report['path']}: all {report['count']} locked packages match"]
    lines = [f"{report['path']}: {len(report['differ'])} of {report['count']} locked packages differ"]
    for d in report["differ"]:
        lines.append(f"  {d['name']} not installed, lock {d['lock']}" if d["installed"] is None else
                     f"  installed {d['name']} {d['installed']}, lock {d['lock']}")
    return lines


def run_info(args: argparse.Namespace) -> int:
    rep = Reporter(args)
    env = environment()
    data = data_report(args.data_dir, verify=not args.no_verify)
    lock = lock_report(args.lock if args.lock is not None else default_lock_path())
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if os.environ.get(k)}
    rep.event("info", environment=env, thread_environment=threads, data=data, lock=lock)
    if rep.json:
        return 0
    for key in ("tinygrad_mnist", "python", "numpy", "torch", "matplotlib", "scikit-learn", "tqdm", "pillow",
                "threadpoolctl"):
        rep.result(f"{key + ':':<16}{env[key] or 'not installed'}")
    rep.result(f"{'platform:':<16}{env['platform']}")
    rep.result(f"{'CPUs:':<16}{env['cpu_count']}" + (f"  ({', '.join(f'{k}={v}' for k, v in threads.items())})"
                                                      if threads else ""))
    if env["blas"]:
        for b in env["blas"]:
            rep.result(f"{'BLAS:':<16}{b['internal_api']} {b['version']}, {b['num_threads']} threads, "
                       f"{b['threading_layer']}, {b['architecture']}")
    else:
        rep.result(f"{'BLAS:':<16}unknown (pip install threadpoolctl to see numpy's BLAS and its threads)")
    for i, line in enumerate(lock_lines(lock)):
        rep.result(f"{'lock:' if i == 0 else '':<16}{line}")
    if not data["found"]:
        rep.result(f"{'data:':<16}MNIST not found\n{data['message']}")
        return 0
    state = ("MD5 verified" if data.get("verified") else
             "not verified (--no-verify)" if "verified" not in data else
             f"MD5 MISMATCH: {', '.join(data.get('mismatch', [])) or data.get('error')}")
    rep.result(f"{'data:':<16}{data['path']} ({data.get('name', '?')}; {state})")
    return 0
