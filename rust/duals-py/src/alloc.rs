//! A NumPy data allocator that keeps large freed blocks for reuse, set while the drivers
//! evaluate a user's function.
//!
//! Why: an eager evaluation allocates a new tangent block per operation (hundreds of KiB to MiB
//! at wide chunks) and frees it soon after. glibc serves such sizes with `mmap`, or trims the top
//! of its heap when they are freed, so the next evaluation touches fresh pages: a page fault per
//! 4 KiB, which on a virtual machine costs more than the arithmetic (measured: the 512-state
//! Brusselator Jacobian with 256 tangent rows, ~400 faults per call; 512 rows, ~1500, 4x slower
//! than with the faults avoided by glibc tunables).
//!
//! How: NumPy lets a thread's context choose the allocator of new arrays (`PyDataMem_SetHandler`,
//! NEP 49); the drivers set this one around their evaluations (`_alloc_enter`/`_alloc_exit`).
//! Blocks of at least [`MIN_BLOCK`] bytes it hands out are recorded with their size; when freed
//! they are kept (up to [`CACHE_BYTES`] in all) and handed out again for a request of the same
//! size (zeroed for `calloc`). Everything else is the C library's `malloc`, `calloc`, `realloc`, `free`, as NumPy's
//! default allocator. Arrays outlive the scope as usual: NumPy frees each array with the
//! allocator that made it.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::{ffi, intern};

/// Blocks below this size are the C library's business only.
const MIN_BLOCK: usize = 1 << 16;
/// At most this many bytes of freed blocks are kept.
const CACHE_BYTES: usize = 64 << 20;

unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(nelem: usize, elsize: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// NumPy's `PyDataMemAllocator`.
#[repr(C)]
struct Allocator {
    ctx: *mut c_void,
    malloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    calloc: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    realloc: unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void, *mut c_void, usize),
}

/// NumPy's `PyDataMem_Handler` (version 1).
#[repr(C)]
struct Handler {
    name: [u8; 127],
    version: u8,
    allocator: Allocator,
}

/// The blocks handed out (address -> size) and the freed ones kept (size -> addresses).
#[derive(Default)]
struct Cache {
    live: HashMap<usize, usize>,
    free: HashMap<usize, Vec<usize>>,
    kept: usize,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with_cache<T>(f: impl FnOnce(&mut Cache) -> T) -> Option<T> {
    let mut guard = CACHE.lock().ok()?;
    Some(f(guard.get_or_insert_with(Cache::default)))
}

unsafe extern "C" fn h_malloc(_: *mut c_void, size: usize) -> *mut c_void {
    if size < MIN_BLOCK {
        // SAFETY: the C library's malloc.
        return unsafe { malloc(size) };
    }
    let reused = with_cache(|c| {
        let p = c.free.get_mut(&size).and_then(Vec::pop)?;
        c.kept -= size;
        c.live.insert(p, size);
        Some(p)
    })
    .flatten();
    if let Some(p) = reused {
        return p as *mut c_void;
    }
    // SAFETY: the C library's malloc.
    let p = unsafe { malloc(size) };
    if !p.is_null() {
        with_cache(|c| c.live.insert(p as usize, size));
    }
    p
}

unsafe extern "C" fn h_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    match nelem.checked_mul(elsize) {
        Some(size) if size >= MIN_BLOCK => {
            // A kept block zeroed costs a memset; a fresh one, a page fault per 4 KiB anyway
            // when it is written (as `np.zeros` arrays are).
            // SAFETY: `h_malloc` returns null or a block of `size` bytes.
            let p = unsafe { h_malloc(ctx, size) };
            if !p.is_null() {
                // SAFETY: `p` is a block of `size` bytes, not yet handed to anyone.
                unsafe { std::ptr::write_bytes(p as *mut u8, 0, size) };
            }
            p
        }
        // SAFETY: the C library's calloc (it checks the product itself).
        _ => unsafe { calloc(nelem, elsize) },
    }
}

unsafe extern "C" fn h_realloc(_: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: `ptr` is null or a block of the C library's allocator (all blocks are).
    let p = unsafe { realloc(ptr, size) };
    if !p.is_null() {
        with_cache(|c| {
            c.live.remove(&(ptr as usize));
            if size >= MIN_BLOCK {
                c.live.insert(p as usize, size);
            }
        });
    }
    p
}

unsafe extern "C" fn h_free(_: *mut c_void, ptr: *mut c_void, _size: usize) {
    if ptr.is_null() {
        return;
    }
    // The size recorded when the block was handed out (not NumPy's, which may differ).
    let kept = with_cache(|c| {
        let size = c.live.remove(&(ptr as usize))?;
        if c.kept + size > CACHE_BYTES {
            return None;
        }
        c.kept += size;
        c.free.entry(size).or_default().push(ptr as usize);
        Some(())
    })
    .flatten();
    if kept.is_none() {
        // SAFETY: a block of the C library's allocator, no longer used.
        unsafe { free(ptr) };
    }
}

/// `name` NUL-padded to NumPy's 127 bytes.
const fn handler_name(name: &[u8]) -> [u8; 127] {
    let mut out = [0u8; 127];
    let mut i = 0;
    while i < name.len() && i < 126 {
        out[i] = name[i];
        i += 1;
    }
    out
}

static HANDLER: Handler = Handler {
    name: handler_name(b"duals_block_cache"),
    version: 1,
    allocator: Allocator {
        ctx: std::ptr::null_mut(),
        malloc: h_malloc,
        calloc: h_calloc,
        realloc: h_realloc,
        free: h_free,
    },
};

// SAFETY: the handler is immutable data and functions that synchronize through `CACHE`.
unsafe impl Sync for Handler {}

/// `PyDataMem_SetHandler` from NumPy's C API table (slot 304, NumPy >= 1.22), and the capsule of
/// this handler; `None` if NumPy does not have it.
struct Api {
    set_handler: unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject,
    capsule: Py<PyAny>,
}

static API: OnceLock<Option<Api>> = OnceLock::new();

fn api(py: Python<'_>) -> Option<&'static Api> {
    API.get_or_init(|| load(py).ok().flatten()).as_ref()
}

fn load(py: Python<'_>) -> PyResult<Option<Api>> {
    let module = py
        .import("numpy._core._multiarray_umath")
        .or_else(|_| py.import("numpy.core._multiarray_umath"))?;
    let table = module.getattr(intern!(py, "_ARRAY_API"))?;
    let version: u32 = module
        .getattr(intern!(py, "_get_ndarray_c_version"))?
        .call0()?
        .extract()?;
    // NEP 49 handlers: C API version 0x10 (NumPy 1.22) and later
    if version < 0x10 {
        return Ok(None);
    }
    // SAFETY: `table` is NumPy's API capsule (a pointer to its table of function pointers);
    // its name is read from it, and slot 304 is `PyDataMem_SetHandler` in every NumPy with
    // C API version >= 0x10 (checked above).
    let set_handler = unsafe {
        let name = ffi::PyCapsule_GetName(table.as_ptr());
        let ptr = ffi::PyCapsule_GetPointer(table.as_ptr(), name) as *const *const c_void;
        if ptr.is_null() {
            ffi::PyErr_Clear();
            return Ok(None);
        }
        let f = *ptr.add(304);
        if f.is_null() {
            return Ok(None);
        }
        std::mem::transmute::<
            *const c_void,
            unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject,
        >(f)
    };
    static NAME: &CStr = c"mem_handler";
    // SAFETY: a capsule of the static handler under the name NumPy expects; no destructor
    // (the handler is static).
    let capsule = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCapsule_New(
                &HANDLER as *const Handler as *mut c_void,
                NAME.as_ptr() as *const c_char,
                None,
            ),
        )?
    };
    Ok(Some(Api {
        set_handler,
        capsule: capsule.unbind(),
    }))
}

/// _alloc_enter() -> previous handler | None
///
/// Makes this allocator NumPy's for new arrays in the current context; returns the previous
/// handler for ``_alloc_exit`` (``None``: nothing was changed).
#[pyfunction]
pub(crate) fn _alloc_enter(py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
    let Some(api) = api(py) else {
        return Ok(None);
    };
    // SAFETY: NumPy's `PyDataMem_SetHandler` with a valid handler capsule; it returns the
    // previous handler (a new reference) or NULL with an exception set.
    let old = unsafe { Bound::from_owned_ptr_or_err(py, (api.set_handler)(api.capsule.as_ptr()))? };
    Ok(Some(old.unbind()))
}

/// _alloc_exit(previous): restores the handler ``_alloc_enter`` returned.
#[pyfunction]
pub(crate) fn _alloc_exit(py: Python<'_>, previous: Py<PyAny>) -> PyResult<()> {
    let Some(api) = api(py) else {
        return Ok(());
    };
    // SAFETY: as in `_alloc_enter`, with the handler it returned.
    let old = unsafe { Bound::from_owned_ptr_or_err(py, (api.set_handler)(previous.as_ptr()))? };
    drop(old);
    Ok(())
}
