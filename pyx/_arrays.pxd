# Raw access to NumPy arrays for the kernels' Python entry points.
#
# Acquiring a typed memoryview costs about 0.8 us per array (and a fused
# ``def`` signature is matched at every call); for the per-step kernels that
# is most of their cost at small sizes. ``data_of`` instead checks an ndarray
# in a few C comparisons (dtype, C order, writeable, element count) and
# returns its data pointer. cyprop.functional has validated everything
# already: these checks are the kernels' own last line of defence, so that a
# wrong array raises instead of corrupting memory.
cimport numpy as cnp  # Cython 3 calls numpy's import_array() on cimport


cdef inline bint fits(object a, int typenum, Py_ssize_t size, bint writeable):
    """Whether ``a`` is a C-contiguous ndarray of ``typenum`` with ``size`` elements."""
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(a):
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_SIZE(arr) == size
            and (not writeable or cnp.PyArray_ISWRITEABLE(arr)))


cdef inline void* data_of(object a, int typenum, Py_ssize_t size, bint writeable,
                          str name) except NULL:
    """Data pointer of ndarray ``a``, after checking dtype, order and size."""
    if not fits(a, typenum, size, writeable):
        raise ValueError(f"{name}: expected a C-contiguous{' writeable' if writeable else ''} "
                         f"numpy.ndarray of {size} elements of type number {typenum}")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline int float_type(object a, str name) except -1:
    """NPY_FLOAT or NPY_DOUBLE: the dtype of ndarray ``a``, which must be one of them."""
    if cnp.PyArray_Check(a):
        t = cnp.PyArray_TYPE(<cnp.ndarray>a)
        if t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE:
            return t
    raise TypeError(f"{name} must be a float32 or float64 numpy.ndarray")
