"""Package discovery for bookkeeper.

`adapters/` is installed as `bookkeeper.adapters` (never as a bare top-level `adapters`,
a name owned by another PyPI project). The mapping works for editable and normal installs.
"""
from setuptools import Extension, find_packages, setup

packages = find_packages(include=["bookkeeper", "bookkeeper.*"])
packages += ["bookkeeper.adapters"] + [
    "bookkeeper.adapters." + name for name in find_packages("adapters")
]

setup(
    packages=packages,
    package_dir={"bookkeeper.adapters": "adapters"},
    package_data={"bookkeeper": ["py.typed"]},
    ext_modules=[Extension("bookkeeper._speedups", ["bookkeeper/_speedups.c"], optional=True)],
)
