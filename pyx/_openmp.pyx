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


# --- The process-wide back-off state of the parallel regions (_team.h) ----------
from libc.stdint cimport int64_t

cdef extern from "_team.h" nogil:
    ctypedef struct cp_team_state:
        int64_t serial_until
        int64_t backoff
        int64_t last_loss
        int64_t losses
        int64_t fixed
        int64_t last_end
    ctypedef struct cp_region:
        int64_t t0
        int64_t busy
        Py_ssize_t blocks
        Py_ssize_t n_blocks
        int cold
    void* cp_team_address()
    void cp_team_bind(void* state)
    int64_t cp_now_ns()
    void cp_region_end(const cp_region* r)


def _team_state_address():
    """Address of the one back-off state every kernel module binds to."""
    return <size_t>cp_team_address()


cdef cp_team_state* _state():
    return <cp_team_state*>cp_team_address()


def team_stats():
    """The parallel regions' back-off: (regions lost, back-off ns, ns left of it).

    A region "lost" when it took longer than its work would have on one
    thread (another process kept one of our threads off the CPU); the kernels
    then run on one thread for the back-off time. See ``pyx/_team.h``.
    """
    cdef cp_team_state* s = _state()
    return s.losses, s.backoff, max(0, s.serial_until - cp_now_ns())


def _team_last_end():
    """When (ns, cp_now_ns's clock) the last parallel region ended; 0 before any.
    Tests read it to tell whether a call ran a parallel region at all."""
    return _state().last_end


def _team_reset():
    """Forget every loss and back-off (tests, benchmarks)."""
    cdef cp_team_state* s = _state()
    s.serial_until = s.backoff = s.last_loss = s.losses = s.last_end = 0


def _team_fix(bint fixed):
    """Never back off while ``fixed`` (every region on the threads asked for); returns
    the previous setting. For tests that must exercise the parallel paths."""
    cdef cp_team_state* s = _state()
    old = bool(s.fixed)
    s.fixed = fixed
    if fixed:
        s.serial_until = 0
    return old


def _team_simulate_region(int64_t wall_ns, int64_t busy_ns, Py_ssize_t blocks,
                          Py_ssize_t n_blocks, bint cold=False):
    """Judge a made-up region (thread 0 ran ``blocks`` of ``n_blocks`` in ``busy_ns``;
    ``cold``: it began long after the last one)."""
    cdef cp_region r
    r.t0 = cp_now_ns() - wall_ns
    r.busy, r.blocks, r.n_blocks, r.cold = busy_ns, blocks, n_blocks, cold
    cp_region_end(&r)
    return team_stats()
