"""Whether the extensions were compiled with OpenMP, and its default thread count."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CYPROP_HAS_OPENMP 1
    #else
    #define CYPROP_HAS_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int CYPROP_HAS_OPENMP
    int omp_get_max_threads() nogil


def openmp_enabled():
    """True if the kernels were built with OpenMP."""
    return bool(CYPROP_HAS_OPENMP)


def openmp_max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return omp_get_max_threads()
