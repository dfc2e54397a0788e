/*
 * _team.h - whether an OpenMP region pays, on a machine that others share.
 *
 * A parallel region (fork, blocks, join) ends only when its last thread does.
 * On a quiet machine that is when the work is done. When another process (a
 * data loader, a simulator; or NumPy's own BLAS threads, which spin for a
 * while after each call) keeps one of the cores busy, the scheduler can leave
 * one of our threads off the CPU for a time slice or more (1-16 ms, measured),
 * and the region waits for it: beside one busy process on 2 cores, training
 * steps at 2 threads ran up to 3x slower than at 1, and beside NumPy's BLAS
 * threads 19x. No thread count or spin setting is right in both cases
 * (OMP_WAIT_POLICY=passive fixed the load and made quiet mid-size steps 2x
 * slower), so cyprop measures each region and backs off:
 *
 * - Every region's blocks are fixed by the shapes (never by the thread
 *   count) and handed out as threads come free (schedule "guided": runs of
 *   blocks that shrink as the region goes on, so few grabs; "dynamic", one
 *   block a grab, made (4096, 1024) ReLU 15-20% slower at 2 threads), so a
 *   thread that runs late takes fewer of them; results are the same
 *   whichever thread computes a block.
 * - The calling thread (thread 0 of the team) times the blocks it computes.
 *   Their mean time times the number of blocks estimates what the region
 *   would have taken on that one thread (``serial``). A region whose wall
 *   time exceeds CP_TEAM_LOSS times that, and by more than CP_TEAM_SLACK_NS,
 *   lost to one thread: it waited on a thread the scheduler did not run.
 * - A region that begins more than CP_TEAM_COLD_NS after the last one ended
 *   is not judged: its threads were asleep, and on a quiet machine waking
 *   them could stall it for 2-8 ms (the scheduler woke both threads on one
 *   CPU and spread them out later; seen on about 1 in 6 such regions, never
 *   on a region that followed another within milliseconds).
 * - A loss of more than CP_TEAM_STALL_NS (a thread off the CPU for a time
 *   slice: 8-16 ms beside a busy process), or a second loss within
 *   CP_TEAM_WINDOW_NS of the last, starts a back-off: every region runs on
 *   one thread for CP_TEAM_BACKOFF_MIN_NS, then for twice as long after each
 *   further loss, up to CP_TEAM_BACKOFF_MAX_NS; the first region after it
 *   tries the team again. A lone short loss is forgiven: on a quiet
 *   (virtual) machine a warm region lost 1.5-4.5 ms now and then, a few
 *   times a minute, where a back-off would cost more than the loss. The
 *   back-off starts again from its minimum once no region has lost for
 *   CP_TEAM_FORGET times the last one.
 * - A region in which thread 0 computed no block (the others took them all
 *   while it was off the CPU) has a serial estimate of 0: all its time counts.
 *
 * On a quiet machine losses are that rare, and regions too small to pay are
 * serial anyway, by each kernel's size threshold, so nothing changes there
 * (0 of 15000 regions of a 64-128-128-10 training loop lost by more than
 * 1 ms). Beside a busy process the kernels run at about their 1-thread speed,
 * plus two lost regions per back-off: at the longest, under 1% of the time.
 *
 * The state is one per process: each kernel module binds, at import, to the
 * _openmp module's (cp_team_bind; see _team.pxd), so a loss seen by one
 * kernel serialises them all. Reads and writes are relaxed atomics: threads
 * that race disagree for a region at most.
 */
#ifndef CYPROP_TEAM_H
#define CYPROP_TEAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#define CP_THREAD_NUM() omp_get_thread_num()
#else
#define CP_THREAD_NUM() 0
#endif

#if defined(_WIN32)
#include <windows.h>
static inline int64_t cp_now_ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (int64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}
#else
#include <time.h>
static inline int64_t cp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#endif

#if defined(__GNUC__)
#define CP_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define CP_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else  /* MSVC: aligned 64-bit loads and stores are atomic on x64 */
#define CP_LOAD(p) (*(volatile int64_t *)(p))
#define CP_STORE(p, v) (*(volatile int64_t *)(p) = (v))
#endif

#define CP_TEAM_LOSS 1.25                   /* wall > 1.25 x serial: the region lost */
#define CP_TEAM_SLACK_NS 250000             /* ... and by at least 250 us */
#define CP_TEAM_WINDOW_NS 50000000          /* two losses within 50 ms start a back-off, */
#define CP_TEAM_STALL_NS 5000000            /* and so does one that lost over 5 ms */
#define CP_TEAM_BACKOFF_MIN_NS 50000000     /* of 50 ms on one thread at first */
#define CP_TEAM_BACKOFF_MAX_NS 1000000000   /* at most 1 s */
#define CP_TEAM_FORGET 4
#define CP_TEAM_COLD_NS 20000000            /* a region 20 ms after the last is not judged */

typedef struct {
    int64_t serial_until;   /* regions run on one thread until this time (ns) */
    int64_t backoff;        /* the last back-off (ns); 0 after a quiet spell */
    int64_t last_loss;      /* when a region last lost (ns) */
    int64_t losses;         /* regions lost so far (for tests and the bench) */
    int64_t fixed;          /* nonzero: never back off (tests that need every region parallel) */
    int64_t last_end;       /* when the last region ended (ns) */
} cp_team_state;

typedef struct {
    int64_t t0;             /* when thread 0 entered the region */
    int64_t busy;           /* thread 0's time in blocks */
    ptrdiff_t blocks;       /* blocks thread 0 computed */
    ptrdiff_t n_blocks;     /* blocks in the region */
    int cold;               /* the region began over CP_TEAM_COLD_NS after the last one */
} cp_region;

static cp_team_state cp_team_own = {0, 0, 0, 0, 0, 0};
static cp_team_state *cp_team = &cp_team_own;

/* use the process-wide state at ``state`` (the _openmp module's) */
static inline void cp_team_bind(void *state) { cp_team = (cp_team_state *)state; }
static inline void *cp_team_address(void) { return (void *)&cp_team_own; }

/* The team size for a region of n_blocks blocks: n_threads (at most one thread
   a block), or 1 during a back-off. A region run on more than one thread
   must end with cp_region_end. */
static inline int cp_region_begin(cp_region *r, int n_threads, ptrdiff_t n_blocks)
{
    int64_t now;
    if (n_threads <= 1 || n_blocks <= 1)
        return 1;
    now = cp_now_ns();
    if (now < CP_LOAD(&cp_team->serial_until))
        return 1;
    r->t0 = now;
    r->cold = now - CP_LOAD(&cp_team->last_end) > CP_TEAM_COLD_NS;
    r->busy = 0;
    r->blocks = 0;
    r->n_blocks = n_blocks;
    return n_blocks < n_threads ? (int)n_blocks : n_threads;
}

/* Inside the region, around each block: thread 0 times its blocks. */
static inline int64_t cp_block_begin(void) { return CP_THREAD_NUM() == 0 ? cp_now_ns() : 0; }

static inline void cp_block_end(cp_region *r, int64_t started)
{
    if (started != 0) {
        r->busy += cp_now_ns() - started;
        r->blocks += 1;
    }
}

/* After the region: did it lose to one thread? A loss of more than
   CP_TEAM_STALL_NS, or a second loss within CP_TEAM_WINDOW_NS of the last
   one, starts a back-off. */
static inline void cp_region_end(const cp_region *r)
{
    int64_t now = cp_now_ns(), wall = now - r->t0, backoff, last;
    double serial;
    CP_STORE(&cp_team->last_end, now);
    if (r->cold || CP_LOAD(&cp_team->fixed))
        return;  /* not judged: a cold start, or told not to back off */
    /* thread 0 computed no block: it was off the CPU all along (0: any wait is lost) */
    serial = r->blocks ? (double)r->busy * (double)r->n_blocks / (double)r->blocks : 0.0;
    backoff = CP_LOAD(&cp_team->backoff);
    last = CP_LOAD(&cp_team->last_loss);
    if ((double)wall > CP_TEAM_LOSS * serial && (double)wall > serial + CP_TEAM_SLACK_NS) {
        CP_STORE(&cp_team->losses, CP_LOAD(&cp_team->losses) + 1);
        CP_STORE(&cp_team->last_loss, now);
        if ((double)wall < serial + CP_TEAM_STALL_NS
                && (last == 0 || now - last > CP_TEAM_WINDOW_NS))
            return;  /* a lone short loss: a page fault, a daemon, the hypervisor */
        backoff = backoff < CP_TEAM_BACKOFF_MIN_NS ? CP_TEAM_BACKOFF_MIN_NS : 2 * backoff;
        if (backoff > CP_TEAM_BACKOFF_MAX_NS)
            backoff = CP_TEAM_BACKOFF_MAX_NS;
        CP_STORE(&cp_team->backoff, backoff);
        CP_STORE(&cp_team->serial_until, now + backoff);
    } else if (backoff != 0 && now - last > CP_TEAM_FORGET * backoff) {
        CP_STORE(&cp_team->backoff, 0);
    }
}

#endif /* CYPROP_TEAM_H */
