"""Package discovery for bookkeeper, and its two OPTIONAL C accelerators.

`adapters/` is installed as `bookkeeper.adapters` (never as a bare top-level `adapters`,
a name owned by another PyPI project). The mapping works for editable and normal installs.

C extensions (both `optional=True`: without a compiler `pip install` still succeeds and the
pure-Python code runs; `BOOKKEEPER_PURE_PYTHON=1` forces that path, see `bookkeeper/_accel.py`):

* `bookkeeper._speedups` -- the generic book loops (apply, top, top_raw) and the OKX checksum;
  it exports a C API capsule declared in `bookkeeper/_speedups_capi.h`.
* `bookkeeper.adapters.binance._fastdepth` -- the Binance depthUpdate decoder and its fused
  decode + apply, beside the Binance adapter; it applies through `_speedups`' C API, so it
  needs `_speedups` at import time (without it, it fails to import and the pure path runs).
"""
from setuptools import Extension, find_packages, setup

packages = find_packages(include=["bookkeeper", "bookkeeper.*"])
packages += ["bookkeeper.adapters"] + [
    "bookkeeper.adapters." + name for name in find_packages("adapters")
]

CAPI_HEADER = "bookkeeper/_speedups_capi.h"

setup(
    packages=packages,
    package_dir={"bookkeeper.adapters": "adapters"},
    # the C API header ships with the package: sdists need it to build both extensions
    package_data={"bookkeeper": ["py.typed", "_speedups_capi.h"]},
    ext_modules=[
        Extension("bookkeeper._speedups", ["bookkeeper/_speedups.c"],
                  include_dirs=["bookkeeper"], depends=[CAPI_HEADER], optional=True),
        Extension("bookkeeper.adapters.binance._fastdepth", ["adapters/binance/_fastdepth.c"],
                  include_dirs=["bookkeeper"], depends=[CAPI_HEADER], optional=True),
    ],
)
