"""The tree walk compiled ahead of time (numba.pycc) into an extension module that needs numpy only.

Why: numba and LLVM (libllvmlite alone is 89 MB resident) were a third of every serving worker's
memory and 0.2 s of its start, only to run one small function whose machine code never changes.
`build()` (run by `make setup` and the image build, through `treewalk.compile_all`) compiles the
same `_walk` body into `_treewalk_aot_<key>` next to this module; a request's few rows are then
walked by it and the process never imports numba. The key hashes treewalk.py's source and the
numpy and Python versions, so an edited walk or another numpy never runs a stale module: then, or
where no C compiler was available at build time, the numba JIT runs as before.

pycc's functions hold the GIL (it has no nogil): batches large enough to be scored in a worker
thread still go to numba's `walk_released` (imported then, once).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

PREFIX = "_treewalk_aot_"
HERE = Path(__file__).resolve().parent
# The arguments of `treewalk._walk`, with the comparison dtype ({x}) of the rows and thresholds.
SIGNATURE = (
    "void({x}[:, ::1], i8[::1], i8[::1], {x}[::1], i8[::1], i8[::1], b1[::1], f8[::1], f8[::1], "
    "b1, b1, b1, f8, f8[::1], f8[:, ::1], b1, i8)"
)


def module_name() -> str:
    """`_treewalk_aot_<key>`: the key changes with the walk's source, numpy and Python."""
    digest = hashlib.sha256((HERE / "treewalk.py").read_bytes())
    digest.update(f"{np.__version__} {sys.version_info[:2]} {SIGNATURE}".encode())
    return PREFIX + digest.hexdigest()[:12]


@cache
def load() -> ModuleType | None:
    """The compiled module for this walk, numpy and Python; None when it was not built."""
    try:
        return importlib.import_module(f"{__package__}.{module_name()}")
    except ImportError:
        return None


def kernel(compare_dtype: type[np.floating[Any]]) -> Any:
    """The ahead-of-time walk for rows compared in `compare_dtype`, or None."""
    module = load()
    if module is None:
        return None
    return module.walk_f4 if compare_dtype is np.float32 else module.walk_f8


def build(directory: Path = HERE) -> Path:
    """Compile the walk into `directory` (atomically: concurrent builds leave one whole file)."""
    from numba.pycc import CC

    from churnops.modeling import treewalk

    name = module_name()
    with tempfile.TemporaryDirectory(prefix="treewalk-aot-") as scratch:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
            cc = CC(name)
            cc.output_dir = scratch
            cc.verbose = False
            body = treewalk._walk.py_func
            cc.export("walk_f4", SIGNATURE.format(x="f4"))(body)
            cc.export("walk_f8", SIGNATURE.format(x="f8"))(body)
            cc.compile()
        (built,) = Path(scratch).glob(f"{name}*")
        target = directory / built.name
        staged = directory / f".{built.name}.{os.getpid()}"
        shutil.copyfile(built, staged)
        staged.replace(target)
    for stale in directory.glob(f"{PREFIX}*"):  # modules of an earlier walk or numpy
        if not stale.name.startswith(name):
            stale.unlink(missing_ok=True)
    load.cache_clear()
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-missing", action="store_true", help="build only when absent")
    args = parser.parse_args(argv)
    if args.if_missing and load() is not None:
        return 0
    try:
        path = build()
    except Exception as exc:  # no compiler, read-only package: the numba JIT serves instead
        print(f"warning: tree walk not compiled ahead of time ({exc}); numba's JIT will run it")
        return 0
    print(f"compiled the tree walk ahead of time: {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
