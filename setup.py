"""The compiled ftrace scanner; everything else is in pyproject.toml.

The extension is optional: without a C compiler the package still installs
and `gunyah trace stats` falls back to its numpy parser (slower, same counts).
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gunyah._ftrace",
            ["src/gunyah/_ftrace.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        )
    ]
)
