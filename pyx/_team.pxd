# Whether a parallel region pays (see _team.h): the region API every kernel's
# prange goes through, and the binding of each module to the one process-wide
# back-off state (the _openmp module's). Inline only: no module behind it.
#
# A region over n_blocks fixed blocks reads:
#     cdef cp_region reg
#     nt = cp_region_begin(&reg, n_threads, n_blocks) if <big enough> else 1
#     if nt > 1:
#         for blk in prange(n_blocks, num_threads=nt, schedule="guided"):
#             t = cp_block_begin()
#             <block blk>
#             cp_block_end(&reg, t)
#         cp_region_end(&reg)
#     else:
#         <the blocks in order, or one call over all of them>
from libc.stdint cimport int64_t

cdef extern from "_team.h" nogil:
    ctypedef struct cp_region:
        pass
    int cp_region_begin(cp_region* r, int n_threads, Py_ssize_t n_blocks)
    int64_t cp_block_begin()
    void cp_block_end(cp_region* r, int64_t started)
    void cp_region_end(const cp_region* r)
    void cp_team_bind(void* state)
    void* cp_team_address()


cdef inline int bind_team() except -1:
    """Use the process-wide back-off state (call once, at module import)."""
    from cyprop._openmp import _team_state_address
    cp_team_bind(<void*><size_t>_team_state_address())
    return 0
