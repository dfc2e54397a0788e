"""Build the Cython kernels in ``pyx/`` as modules of the ``cyprop`` package.

Environment variables
---------------------
CYPROP_NATIVE=1
    Add ``-march=native`` (tuned for the build machine; the wheel will not be
    portable). Off by default.
CYPROP_OPENMP=0
    Build without OpenMP even where the compiler supports it.

OpenMP is enabled when a test program compiles and links with the compiler's
OpenMP flag (gcc/clang ``-fopenmp``; MSVC ``/openmp``; Apple clang needs
``brew install libomp`` and ``CFLAGS="-Xpreprocessor -fopenmp"``
``LDFLAGS="-lomp"``). Where it does not, the build succeeds serially with a
warning, and ``cyprop.openmp_enabled()`` returns False.
"""
import os
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["_linear", "_activations", "_softmax_ce", "_mse", "_losses", "_dropout", "_norm", "_optim", "_openmp", "_rop"]

_OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _compiler_supports_openmp(compiler, flag):
    """Compile and link a tiny OpenMP program with ``flag``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as f:
            f.write(_OPENMP_TEST)
        # the user's LDFLAGS (e.g. -fsanitize=...) apply to this link too, as to the extensions'
        ldflags = os.environ.get("LDFLAGS", "").split()
        flags = flag.split()
        compile_flags = [f for f in flags if not f.startswith("-l")]
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=compile_flags)
            compiler.link_executable(
                objs, "omp_test", output_dir=tmp,
                extra_postargs=([] if flag.startswith("/") else flags) + ldflags,
            )
        except Exception:  # CompileError, LinkError, missing compiler pieces
            return False
    return True


class BuildExt(build_ext):
    """Add optimisation and OpenMP flags for the compiler actually in use."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        # -fno-math-errno / -fno-trapping-math: nothing here reads errno or FP
        # exception flags; without them gcc will not vectorize the element-wise
        # loops (comparisons "may trap"). Rounding is unchanged (no -ffast-math).
        # -falign-loops=32: loop tops on 32-byte fetch windows. Without it a
        # kernel's speed hung on where the linker happened to put it: the same
        # float32 softmax exp loop, moved 16 bytes by an edit elsewhere in the
        # module, ran 3-10% slower (and faster again with this flag); other
        # kernels' speed did not change.
        compile_args = (["/O2"] if msvc else
                        ["-O3", "-fno-math-errno", "-fno-trapping-math", "-falign-loops=32"])
        link_args = []
        if os.environ.get("CYPROP_NATIVE") == "1" and not msvc:
            compile_args.append("-march=native")
        omp_flag = "/openmp" if msvc else "-fopenmp"
        want_openmp = os.environ.get("CYPROP_OPENMP", "1") != "0"
        if want_openmp and _compiler_supports_openmp(self.compiler, omp_flag):
            compile_args.append(omp_flag)
            if not msvc:
                link_args.append(omp_flag)
        elif (want_openmp and sys.platform == "darwin"
              and _compiler_supports_openmp(self.compiler, "-Xpreprocessor -fopenmp -lomp")):
            # Apple clang: OpenMP through Homebrew's libomp (CFLAGS/LDFLAGS point at it;
            # [tool.cibuildwheel.macos] in pyproject.toml sets them for the wheels)
            compile_args += ["-Xpreprocessor", "-fopenmp"]
            link_args.append("-lomp")
        else:
            warnings.warn(
                "cyprop: building WITHOUT OpenMP; kernels will run on one thread. "
                "See setup.py for how to enable it on your platform.",
                stacklevel=1,
            )
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    import numpy

    exts = [
        Extension(f"cyprop.{name}", [f"pyx/{name}.pyx"],
                  include_dirs=["pyx", numpy.get_include()],
                  define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")])
        for name in KERNELS
    ]
    return cythonize(
        exts,
        include_path=["pyx"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
        },
        annotate=os.environ.get("CYPROP_ANNOTATE") == "1",
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
