"""``tinygrad-mnist info``: versions, threads, BLAS, and where the data is and whether it verifies.

    tinygrad-mnist info
    tinygrad-mnist info --data-dir ~/data --json
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

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


def run_info(args: argparse.Namespace) -> int:
    rep = Reporter(args)
    env = environment()
    data = data_report(args.data_dir, verify=not args.no_verify)
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if os.environ.get(k)}
    rep.event("info", environment=env, thread_environment=threads, data=data)
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
    if not data["found"]:
        rep.result(f"{'data:':<16}MNIST not found\n{data['message']}")
        return 0
    state = ("MD5 verified" if data.get("verified") else
             "not verified (--no-verify)" if "verified" not in data else
             f"MD5 MISMATCH: {', '.join(data.get('mismatch', [])) or data.get('error')}")
    rep.result(f"{'data:':<16}{data['path']} ({data.get('name', '?')}; {state})")
    return 0
