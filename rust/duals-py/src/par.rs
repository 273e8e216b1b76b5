//! Two-way splitting of a kernel over a helper thread, with the caller attached to Python.
//!
//! [`both`] runs two closures, one on the calling thread and one on a persistent helper thread,
//! and returns when both are done. The caller keeps the GIL throughout (no Python code runs
//! meanwhile, so NumPy memory read or written by the closures is not touched by anyone else);
//! the helper never touches Python objects.
//!
//! There is no helper on a machine with one CPU, or with the environment variable
//! `DUALS_NUM_THREADS=1` (read once, see [`cpus`]).
//!
//! The helper spins briefly after each job (a burst of kernels from one user function costs a
//! wake-up once), then parks. The second job is claimed by whichever thread gets to it first:
//! when the helper is slow to start (the other CPU busy with another process), the caller runs
//! it itself after its own, so a split is never much slower than running both in turn. A helper
//! that is late (not started, or finishing well after the caller) makes the next splits run on
//! the calling thread, for a number of splits that grows fourfold while it stays late: a helper
//! preempted in the middle of a job costs the caller a wait, which on a loaded machine would
//! otherwise recur at every split (measured with another process busy: the Brusselator-512
//! Jacobian 1.5-2.0 ms split at every kernel, 1.2-1.3 ms without the helper).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A job: a type-erased `&(dyn Fn() + Sync)` living on the caller's stack during [`both`].
type Job = *const (dyn Fn() + Sync);

/// No job posted.
const IDLE: u8 = 0;
/// A job is posted and not yet claimed.
const POSTED: u8 = 1;
/// The job was claimed (by the helper or the caller) and is running or done.
const CLAIMED: u8 = 2;

/// Tangent elements of a kernel from which it is split in two (128 KiB of tangents: below, the
/// hand-over costs about what the split saves; measured on 2 cores, `x * y` with 64 rows of 256
/// 4.3 -> 3.9 us, 128 rows 10.3 -> 9.5 us, and the Brusselator-512 Jacobian with 128 directions
/// 0.92 -> 0.75 ms, minimum of interleaved runs on a shared machine).
pub(crate) const SPLIT_ABOVE: usize = 1 << 14;

/// Splits to run on the calling thread only (backing off after a late helper), and the current
/// length of the back-off.
static SKIP: AtomicUsize = AtomicUsize::new(0);
static BACKOFF: AtomicUsize = AtomicUsize::new(0);
/// The longest back-off, in splits (about a tenth of a second of kernels).
const MAX_BACKOFF: usize = 1 << 14;

/// How long the helper spins for the next job before it parks.
const SPIN: Duration = Duration::from_micros(30);

struct Helper {
    thread: Thread,
    /// The posted job's data pointer and vtable (a fat pointer in two parts).
    job: Mutex<Option<JobPtr>>,
    state: AtomicU8,
    /// Jobs finished by the helper (the caller waits for it to reach its ticket).
    done: AtomicUsize,
    /// Whether the last job the helper ran panicked (the caller panics in turn).
    panicked: AtomicBool,
    /// Whether the helper is parked (needs an unpark).
    parked: AtomicBool,
}

/// A job pointer that may cross threads: the closure is `Sync`, and [`both`] keeps it alive
/// until the helper is done with it.
#[derive(Clone, Copy)]
struct JobPtr(Job);

// SAFETY: the pointee is `Sync` (shared use from two threads is allowed) and outlives every use
// by the helper (`both` waits for the helper to finish a job it claimed before returning).
unsafe impl Send for JobPtr {}

static HELPER: OnceLock<Option<&'static Helper>> = OnceLock::new();
/// One split at a time (the helper runs one job); a caller that finds it busy runs serially.
static BUSY: Mutex<()> = Mutex::new(());

/// The threads duals may use (the calling one included), asked once: the available
/// parallelism, at most `DUALS_NUM_THREADS` if that is a positive integer (`1`: the calling
/// thread only). Every parallel path reads it: this helper, compiled batches, fused chains.
pub(crate) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        let available = thread::available_parallelism().map_or(1, |n| n.get());
        match std::env::var("DUALS_NUM_THREADS").map(|v| v.trim().parse::<usize>()) {
            Ok(Ok(cap)) if cap >= 1 => available.min(cap),
            _ => available,
        }
    })
}

fn helper() -> Option<&'static Helper> {
    *HELPER.get_or_init(|| {
        if cpus() < 2 {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel::<&'static Helper>();
        let spawned = thread::Builder::new()
            .name("duals-helper".into())
            .spawn(move || {
                let Ok(h) = rx.recv() else { return };
                serve(h);
            })
            .ok()?;
        let h: &'static Helper = Box::leak(Box::new(Helper {
            thread: spawned.thread().clone(),
            job: Mutex::new(None),
            state: AtomicU8::new(IDLE),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            parked: AtomicBool::new(false),
        }));
        tx.send(h).ok()?;
        Some(h)
    })
}

/// The helper's loop: claim posted jobs, spin for a while, park.
fn serve(h: &'static Helper) {
    let mut last = Instant::now();
    loop {
        if h.state.load(Ordering::Acquire) == POSTED
            && h.state
                .compare_exchange(POSTED, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let job = h.job.lock().ok().and_then(|j| *j);
            if let Some(JobPtr(job)) = job {
                // SAFETY: the caller of `both` keeps the closure alive until `done` counts
                // this job (it waits for a job the helper claimed).
                let f = unsafe { &*job };
                // A panic must not kill the helper or leave the caller waiting forever.
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                h.panicked.store(caught.is_err(), Ordering::Release);
            }
            h.done.fetch_add(1, Ordering::AcqRel);
            last = Instant::now();
            continue;
        }
        if last.elapsed() < SPIN {
            // yielding rather than spinning: on a loaded machine the CPU goes to what else is
            // runnable (the caller's own thread included)
            thread::yield_now();
            continue;
        }
        // Announce the park, then re-check (SeqCst pairs with `both`'s post and check: a job
        // posted in between is seen here, or `both` sees the flag and unparks).
        h.parked.store(true, Ordering::SeqCst);
        if h.state.load(Ordering::SeqCst) != POSTED {
            thread::park_timeout(Duration::from_millis(100));
        }
        h.parked.store(false, Ordering::Release);
        last = Instant::now();
    }
}

/// Runs `first` on this thread and `second` on the helper thread (or here, after `first`, if
/// the helper has not started it by then, is busy, or there is no second CPU); returns when
/// both are done.
///
/// # Panics
/// If `first` or `second` panics (a panic of `second` on the helper thread is caught there and
/// raised here).
pub(crate) fn both(first: impl FnOnce(), second: impl FnOnce() + Send) {
    let Some(h) = helper() else {
        first();
        second();
        return;
    };
    let Ok(_busy) = BUSY.try_lock() else {
        first();
        second();
        return;
    };
    // Backing off: the helper was late recently (the other CPU busy with another process)
    if SKIP.load(Ordering::Relaxed) > 0 {
        SKIP.fetch_sub(1, Ordering::Relaxed);
        first();
        second();
        return;
    }
    // Run once, by whichever thread claims it.
    let cell = Mutex::new(Some(second));
    let run = || {
        if let Some(f) = cell.lock().ok().and_then(|mut c| c.take()) {
            f();
        }
    };
    let job: &(dyn Fn() + Sync) = &run;
    // SAFETY: a lifetime erasure (same fat-pointer layout): the pointer is used by the helper
    // only between the post below and the wait for it at the end of this function (`Wait`, also
    // on unwinding), while `run` is alive.
    let ptr: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
    if let Ok(mut slot) = h.job.lock() {
        *slot = Some(JobPtr(ptr));
    } else {
        first();
        run();
        return;
    }
    let ticket = h.done.load(Ordering::Acquire);
    h.state.store(POSTED, Ordering::SeqCst);
    if h.parked.load(Ordering::SeqCst) {
        h.thread.unpark();
    }

    /// Waits (also when `first` unwinds) until the job is finished by whoever claimed it, and
    /// clears the slot.
    struct Wait<'a> {
        h: &'a Helper,
        ticket: usize,
        second: &'a (dyn Fn() + Sync),
        /// Whether the helper ran the job, and how long this thread waited for it.
        helped: bool,
        waited: Duration,
        finished: bool,
    }
    impl Wait<'_> {
        fn drop_now(&mut self) {
            if std::mem::replace(&mut self.finished, true) {
                return;
            }
            let h = self.h;
            if h.state
                .compare_exchange(POSTED, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // not started by the helper: run it here
                (self.second)();
            } else {
                // claimed by the helper: wait until it counts it done
                self.helped = true;
                let start = Instant::now();
                let target = self.ticket + 1;
                let mut spins = 0u32;
                while h.done.load(Ordering::Acquire) < target {
                    spins += 1;
                    if spins < 1 << 10 {
                        std::hint::spin_loop();
                    } else {
                        thread::yield_now();
                    }
                }
                self.waited = start.elapsed();
            }
            if let Ok(mut slot) = h.job.lock() {
                *slot = None;
            }
            h.state.store(IDLE, Ordering::Release);
        }
    }
    impl Drop for Wait<'_> {
        fn drop(&mut self) {
            self.drop_now();
        }
    }
    let mut wait = Wait {
        h,
        ticket,
        second: &run,
        helped: false,
        waited: Duration::ZERO,
        finished: false,
    };
    let start = Instant::now();
    first();
    let own = start.elapsed();
    // the second job done here (Wait's drop, which also runs if `first` unwinds)
    wait.drop_now();
    // Late (not started before this thread was done, or finished much later): back off for a
    // number of splits that doubles while it stays late and halves when it is on time.
    let backoff = BACKOFF.load(Ordering::Relaxed);
    if !wait.helped || wait.waited > own / 2 {
        let next = (4 * backoff + 16).min(MAX_BACKOFF);
        BACKOFF.store(next, Ordering::Relaxed);
        SKIP.store(next, Ordering::Relaxed);
    } else {
        BACKOFF.store(backoff / 2, Ordering::Relaxed);
    }
    drop(wait);
    assert!(
        !h.panicked.swap(false, Ordering::AcqRel),
        "a kernel panicked on the helper thread"
    );
}
