"""Dropout: Philox4x32-10's known answers, the mask against the NumPy reference,
thread counts, the drop rate, identities, bad input."""
import numpy as np
import pytest

import cyprop
from cyprop import _dropout
from cyprop import functional as F
from cyprop import reference as R

# Salmon et al.'s known-answer vectors (Random123's kat_vectors, philox4x32 10 rounds):
# counter words, key words -> output words
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("ctr, key, want", KAT)
def test_philox_known_answers(ctr, key, want):
    out = np.zeros(4, np.uint32)
    _dropout.philox_words(ctr[0] | ctr[1] << 32, key[0] | key[1] << 32, ctr[2] | ctr[3] << 32,
                          out)
    assert tuple(int(v) for v in out) == want
    ref = R._dropout.philox4x32_10(*[np.array([v], np.uint64) for v in ctr], *key)
    assert tuple(int(v[0]) for v in ref) == want


@pytest.mark.parametrize("shape", [(1,), (3,), (5, 7), (33, 129), (4, 300, 5)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_matches_reference(shape, p, dtype, n_threads):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y = F.dropout_forward(x, p, seed=12345, step=7)
    np.testing.assert_array_equal(y, R.dropout_forward(x, p, seed=12345, step=7))
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    dx = F.dropout_backward(dy, p, seed=12345, step=7)
    np.testing.assert_array_equal(dx, R.dropout_backward(dy, p, seed=12345, step=7))
    np.testing.assert_array_equal(dx == 0, y == 0)   # the same mask


def test_vector_groups_blocks_and_tails_match_the_reference(dtype, n_threads):
    # several 16384-element thread blocks, each cut into groups of counters
    # drawn in vector registers, a tail shorter than a group; specials in x
    x = np.random.default_rng(5).standard_normal(3 * 16384 + 77).astype(dtype)
    x[[0, 100, 40000]] = [np.nan, np.inf, -np.inf]
    for p, seed, step in [(0.1, 2 ** 64 - 1, 2 ** 64 - 1), (0.5, 0, 0), (0.999, 77, 3)]:
        np.testing.assert_array_equal(F.dropout_forward(x, p, seed=seed, step=step),
                                      R.dropout_forward(x, p, seed=seed, step=step))


def test_p_nearest_one_keeps_nothing(dtype):
    # round(p 2^32) = 2^32: no 32-bit draw reaches it; dropped NaN/inf give NaN (x * 0)
    p = 1.0 - 2.0 ** -40
    x = np.ones(1000, dtype)
    x[:2] = [np.nan, np.inf]
    y = F.dropout_forward(x, p, seed=1)
    assert np.all(y[2:] == 0) and np.isnan(y[:2]).all()
    np.testing.assert_array_equal(y, R.dropout_forward(x, p, seed=1))


def test_identical_across_thread_counts(dtype):
    x = np.random.default_rng(2).standard_normal((700, 301)).astype(dtype)
    res = []
    for n in (1, 2):
        with cyprop.threads(n):
            res.append(F.dropout_forward(x, 0.3, seed=2**63 + 5, step=2**40))
    np.testing.assert_array_equal(*res)


def test_rate_scale_and_independence():
    x = np.ones(1 << 20, np.float32)
    y = F.dropout_forward(x, 0.25, seed=1)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / x.size)
    np.testing.assert_array_equal(y[kept], np.float32(1 / 0.75))
    # a new step or seed: a new, uncorrelated mask
    for other in (F.dropout_forward(x, 0.25, seed=1, step=1), F.dropout_forward(x, 0.25, seed=2)):
        agree = np.mean((other != 0) == kept)
        assert abs(agree - (0.75 ** 2 + 0.25 ** 2)) < 0.005


def test_p_zero_is_an_exact_identity(dtype):
    x = np.array([1.5, -0.0, np.nan, np.inf, -3e-40], dtype)
    y = F.dropout_forward(x, 0.0, seed=3)
    np.testing.assert_array_equal(y, x)
    assert np.signbit(y[1])


def test_in_place(dtype):
    x = np.random.default_rng(4).standard_normal(1000).astype(dtype)
    want = F.dropout_forward(x, 0.5, seed=9)
    assert F.dropout_forward(x, 0.5, seed=9, out=x) is x
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(p=1.0, seed=0), ValueError, "p must be"),
    (dict(p=-0.1, seed=0), ValueError, "p must be"),
    (dict(p=0.5, seed=-1), ValueError, "seed must be"),
    (dict(p=0.5, seed=2 ** 64), ValueError, "seed must be"),
    (dict(p=0.5, seed=0, step=1.5), ValueError, "step must be"),
    (dict(p="a", seed=0), TypeError, "p must be a real"),
])
def test_rejects(kw, exc, match):
    p = kw.pop("p")
    with pytest.raises(exc, match=match):
        F.dropout_forward(np.ones(3), p, **kw)
