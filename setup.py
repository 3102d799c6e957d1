"""The compiled extensions; everything else is in pyproject.toml.

All are optional: without a C compiler the package still installs, `gunyah
trace stats` falls back to its numpy parser (slower, same counts), `gunyah
boot`'s channel to its Python serving loop and the vCPU to its Python trap
hook (slower calls, same answers).
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
        ),
        Extension(
            "gunyah._mailbox",
            ["src/gunyah/_mailbox.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O2"],
            optional=True,
        ),
        Extension(
            "gunyah._vcpu",
            ["src/gunyah/_vcpu.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O2"],
            optional=True,
        ),
    ]
)
