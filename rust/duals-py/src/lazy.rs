//! Lazy fusion of elementwise chains in eager mode.
//!
//! Every eager operation on a `DualArray` is one pass over memory: `sin(x) * exp(-(x * x))`
//! allocates, faults in and writes a primal and a tangent array per operation. For a large
//! first-order array (at least [`LAZY_MIN`] tangent elements, `K·n` for `K` tangent rows of `n`
//! elements), the elementwise operations whose kernels have a
//! vector body (`+ - * /` of two such arrays or of one and a number, negation, and the rules
//! `sin cos exp expm1 log log1p sqrt reciprocal`) are therefore not run at once: they return a
//! *pending* `DualArray` holding the expression, a DAG over input arrays and numbers. The
//! moment anything needs the arrays (any other operation, indexing, `primal`/`tangent`, output
//! collection, repr, pickling: everything that reads `_p`/`_t`, or the arrays in this crate),
//! the expression is evaluated as one [`Fusion`] in one pass, with the thread detached: with one
//! tangent row over up to one thread per CPU ([`Fusion::eval`]); with several, the primals of a
//! block of points once and then the tangent program row by row ([`Fusion::eval_rows`]), in two
//! blocks of rows on the helper thread of `crate::par` for a large block (the Brusselator
//! Jacobian's `u * u * v` and stencil sums over 512 directions).
//!
//! # Same results
//!
//! The fused instructions apply the vector operations of the array kernels the eager
//! operations run (`dual.rs`: `arithmetic`, `array_neg`; `lib.rs`: `unary`), so the arrays are
//! those of the eager operations, bit for bit (NaN payloads aside). Where an eager operation
//! would have taken another path, the expression is replayed operation by operation through the
//! eager paths instead (`replay`): when a `+ - * /` result has a value that is not finite (the
//! eager arithmetic then runs the Python implementation, under NumPy's error state). Binary
//! operations are only deferred while that error state ignores everything (as inside the
//! drivers), so the replay can neither warn nor raise, and nothing it does depends on when it
//! runs.
//!
//! # Inputs that do not change
//!
//! An expression reads its input arrays when it is evaluated, not when it is built, so they
//! must not change in between. Only *private* arrays are inputs (`DualArrayBase::private`): new
//! results of the native kernels and of pending expressions, and the inputs the drivers mark.
//! Python code cannot reach their memory but through `_p`/`_t`, and handing an array out
//! (`expose`) or writing it natively (`x[i] = d`) first evaluates every pending expression
//! (a registry of weak references); an array once handed out is never an input again. While an
//! evaluation reads inputs with the thread detached, they are pinned: handing them out waits.
//!
//! A view made natively (`y[:n]` of a driver's input, see `DualArrayBase::base`) is private
//! while the array it views is, and is read in place (its tangent rows `2n` apart, as
//! `Operand::Rows`); reading it marks that array a leaf too, and handing either out evaluates
//! first.
//!
//! Traced arrays (`duals.compile`) and second-order seeds never take this path; nor arrays below
//! [`LAZY_MIN`] tangent elements, where the bookkeeping would cost more than a pass (the small
//! systems of ODE Jacobians: Robertson's 3 rows of 3).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::{intern, IntoPyObjectExt};

use duals::kernels::{self, FusedRows, FusedVar, Fusion, Level};
use duals::rules::UnaryRule;

use crate::dual::{self, Arg, DualArrayBase, Fresh, Layout, Op};
use crate::errors;

/// Tangent elements (`K·n`) from which an elementwise operation is deferred. Below, the pass the
/// fusion saves costs less than building, registering and compiling the expression (a few
/// microseconds).
pub(crate) const LAZY_MIN: usize = 1 << 15;

/// The threshold in use ([`LAZY_MIN`]; tests move it with `_native._lazy_threshold`).
static THRESHOLD: AtomicUsize = AtomicUsize::new(LAZY_MIN);

/// Most operations in one expression (counted along every path, shared ones as often as they
/// are reached): past it the operand is evaluated and becomes an input, which bounds the
/// register file (in the first-level cache) and the work of compiling.
const MAX_NODES: usize = 48;

/// Fewest points per thread of an evaluation (as `tape.rs` batches).
const POINTS_PER_THREAD: usize = 1 << 17;

thread_local! {
    /// Set while an expression is replayed through the eager paths, which must then not defer.
    static REPLAYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The last NumPy error state seen (`_extobj_contextvar`'s value) and whether it ignores
    /// everything: the state rarely changes, and `np.geterr()` costs a microsecond.
    static ERRSTATE: std::cell::RefCell<Option<(Py<PyAny>, bool)>> =
        const { std::cell::RefCell::new(None) };
}

/// Expressions evaluated fused and replayed (for tests: which path was taken).
static FUSED: AtomicUsize = AtomicUsize::new(0);
static REPLAYED: AtomicUsize = AtomicUsize::new(0);

/// `_native._lazy_counts()`: `(fused, replayed)`, the expressions evaluated in one pass and
/// those replayed through the eager paths so far (private, for tests).
#[pyfunction]
pub(crate) fn _lazy_counts() -> (usize, usize) {
    (
        FUSED.load(Ordering::Relaxed),
        REPLAYED.load(Ordering::Relaxed),
    )
}

/// `_native._lazy_threshold(n=None)`: the element count from which elementwise operations are
/// deferred; sets it to `n` if given and returns the previous value (private, for tests).
#[pyfunction]
#[pyo3(signature = (n = None))]
pub(crate) fn _lazy_threshold(n: Option<usize>) -> usize {
    match n {
        Some(n) => THRESHOLD.swap(n.max(1), Ordering::AcqRel),
        None => THRESHOLD.load(Ordering::Acquire),
    }
}

/// Whether operations may be deferred on this thread now: a vector level (the scalar level
/// runs the elementary functions through the table's libm calls, which the fused evaluator
/// does not) and no replay running.
pub(crate) fn enabled() -> bool {
    static VECTOR: OnceLock<bool> = OnceLock::new();
    *VECTOR.get_or_init(|| Level::best() != Level::Scalar)
        && !REPLAYING.try_with(std::cell::Cell::get).unwrap_or(true)
}

/// Whether an operation on `x` may be deferred: deferring is enabled, and `x` is a DualArray of
/// a first-order seed with at least the threshold of tangent elements (a cheap test before the
/// ufunc's name is looked up).
pub(crate) fn candidate(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<bool> {
    let Ok(x) = x.cast::<DualArrayBase>() else {
        return Ok(false);
    };
    if !enabled() {
        return Ok(false);
    }
    let a = x.get();
    let layout = a.layout(py)?;
    Ok(layout.first_order()
        && a.shape_vec(py).is_some_and(|s| {
            !s.is_empty()
                && s.iter().product::<usize>().saturating_mul(layout.rows())
                    >= THRESHOLD.load(Ordering::Relaxed)
        }))
}

// ------------------------------------------------------------------------------------------------
// Expressions
// ------------------------------------------------------------------------------------------------

/// One operation of an expression, with the number of operations below it ([`MAX_NODES`]).
#[derive(Debug)]
pub(crate) struct Node {
    kind: Kind,
    size: usize,
}

#[derive(Debug)]
enum Kind {
    /// A private array (`DualArrayBase::private`), read when the expression is evaluated.
    Leaf(Py<DualArrayBase>),
    Neg(Arc<Node>),
    Unary(UnaryRule, Arc<Node>),
    Binary(Op, Term, Term),
}

/// An operand of a binary operation.
#[derive(Debug)]
enum Term {
    Node(Arc<Node>),
    /// A number: its value, and the object itself for a replay.
    Const(f64, Py<PyAny>),
}

impl Term {
    fn size(&self) -> usize {
        match self {
            Term::Node(n) => n.size,
            Term::Const(..) => 0,
        }
    }
}

/// The storage of a pending array: its expression until evaluated, then its arrays.
#[derive(Debug)]
pub(crate) struct Lazy {
    shape: Vec<usize>,
    /// Tangent rows `K` (the seed's).
    rows: usize,
    seed: Py<PyAny>,
    node: Mutex<Option<Arc<Node>>>,
    result: OnceLock<(Py<PyAny>, Py<PyAny>)>,
}

/// The expression of a new pending array, handed to `_DualArrayBase.__new__` (as its primal).
#[pyclass(frozen)]
pub(crate) struct PendingHandle(pub(crate) Arc<Lazy>);

/// Pending expressions not known to be evaluated, for [`flush`].
static PENDING: Mutex<Vec<Weak<Lazy>>> = Mutex::new(Vec::new());

fn pending_list() -> std::sync::MutexGuard<'static, Vec<Weak<Lazy>>> {
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Lazy {
    pub(crate) fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub(crate) fn is_done(&self) -> bool {
        self.result.get().is_some()
    }

    fn node(&self) -> Option<Arc<Node>> {
        self.node
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The tangent `(K, *S)` alone, evaluated fused without writing the primal (which is not
    /// kept: the array stays pending), or `None` (evaluated or not fused: use [`Lazy::force`]).
    pub(crate) fn tangent_only(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.result.get().is_some() {
            return Ok(None);
        }
        let Some(node) = self.node() else {
            return Ok(None);
        };
        let t = fused(py, &node, &self.shape, self.rows, false)?.map(|(_, t)| t);
        if t.is_some() {
            FUSED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(t)
    }

    /// Evaluates a pending expression of several tangent rows straight into the block of a
    /// concatenation (`out_p`: `n` values, `out_t`: `K` rows of `n` values `out_stride` apart),
    /// the array staying pending; `false` (nothing written) where it does not fuse, is
    /// evaluated already, or has one row (the caller then reads the arrays as usual).
    pub(crate) fn eval_into(
        &self,
        py: Python<'_>,
        out_p: &mut [f64],
        out_t: &mut [f64],
        out_stride: usize,
    ) -> PyResult<bool> {
        if self.rows < 2 || self.result.get().is_some() {
            return Ok(false);
        }
        let Some(node) = self.node() else {
            return Ok(false);
        };
        let Some((f, out, leaves)) = compile(py, &node) else {
            return Ok(false);
        };
        let done = fill_rows(py, &f, out, &leaves, self.rows, out_p, out_t, out_stride)?;
        if done == Some(true) {
            FUSED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(done == Some(true))
    }

    /// Tangent rows `K`.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The arrays, evaluating the expression the first time.
    pub(crate) fn force(&self, py: Python<'_>) -> PyResult<(&Py<PyAny>, &Py<PyAny>)> {
        if let Some((p, t)) = self.result.get() {
            return Ok((p, t));
        }
        if let Some(node) = self.node() {
            let parts = evaluate(py, &node, &self.shape, self.rows, &self.seed)?;
            // Another thread may have finished first (the GIL was released): the same values.
            drop(self.result.set(parts));
            // The inputs are no longer needed.
            let node = self
                .node
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            drop(node);
        }
        self.result
            .get()
            .map(|(p, t)| (p, t))
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("duals: lost lazy result"))
    }
}

/// Evaluates every pending expression (before arrays they may read are handed out or written).
pub(crate) fn flush(py: Python<'_>) -> PyResult<()> {
    let list = std::mem::take(&mut *pending_list());
    for (i, weak) in list.iter().enumerate() {
        if let Some(lazy) = weak.upgrade() {
            if let Err(e) = lazy.force(py) {
                // The rest stay registered.
                pending_list().extend(list[i + 1..].iter().cloned());
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Waits (detached, so the evaluation can finish) until no evaluation reads the arrays.
pub(crate) fn wait_unpinned(py: Python<'_>, pins: &AtomicUsize) {
    while pins.load(Ordering::Acquire) > 0 {
        py.detach(std::thread::yield_now);
    }
}

/// A new pending array of `node`.
fn pending<'py>(
    py: Python<'py>,
    node: Node,
    shape: Vec<usize>,
    rows: usize,
    seed: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let lazy = Arc::new(Lazy {
        shape,
        rows,
        seed: seed.clone_ref(py),
        node: Mutex::new(Some(Arc::new(node))),
        result: OnceLock::new(),
    });
    {
        let mut list = pending_list();
        if list.len() >= 32 {
            list.retain(|w| w.upgrade().is_some_and(|l| !l.is_done()));
        }
        list.push(Arc::downgrade(&lazy));
    }
    dual::new_pending(py, lazy, seed)
}

/// An array operand of a deferred operation: its expression, shape, seed and the seed's layout.
type Operand = (Arc<Node>, Vec<usize>, Py<PyAny>, Layout);

/// A DualArray operand as an expression: its pending expression, or itself as an input if its
/// arrays are private float64, the primal C-ordered and each tangent row too (one row: the
/// tangent C-ordered; several: rows in order, read in place as `dual::tangent_rows` gives
/// them); with its shape and seed. `None` where the operation must run eagerly.
fn operand(py: Python<'_>, x: &Bound<'_, DualArrayBase>) -> PyResult<Option<Operand>> {
    let a = x.get();
    let layout = a.layout(py)?;
    let k = layout.rows();
    if !layout.first_order() || k == 0 {
        return Ok(None);
    }
    // (0-d arrays: the eager arithmetic takes the Python path.)
    let Some(shape) = a.shape_vec(py).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if shape.iter().product::<usize>().saturating_mul(k) < THRESHOLD.load(Ordering::Relaxed) {
        return Ok(None);
    }
    if let Some(lazy) = a.lazy() {
        if let Some(node) = lazy.node() {
            return Ok(Some((node, shape, a.seed().clone_ref(py), layout)));
        }
    }
    if !a.is_private() {
        return Ok(None);
    }
    let c_order = |x: &Py<PyAny>, len: usize| {
        x.bind(py)
            .cast_exact::<PyArrayDyn<f64>>()
            .is_ok_and(|x| x.is_c_contiguous() && x.is_aligned() && x.len() == len)
    };
    let n = shape.iter().product();
    // Several rows: each row in C order, the rows in order (a view's rows are read in place).
    let rows = |t: &Py<PyAny>| {
        t.bind(py).cast_exact::<PyArrayDyn<f64>>().is_ok_and(|t| {
            t.shape().first() == Some(&k)
                && t.shape()[1..] == *shape
                && matches!(dual::tangent_rows(t), Some((Cow::Borrowed(_), _)))
        })
    };
    let ok = match a.unit_tangent() {
        Some(p) => k == 1 && c_order(p, n),
        None => {
            let (p, t) = a.parts(py)?;
            c_order(p, n) && if k == 1 { c_order(t, n) } else { rows(t) }
        }
    };
    if !ok {
        return Ok(None);
    }
    a.mark_leaf();
    let node = Node {
        kind: Kind::Leaf(x.clone().unbind()),
        size: 0,
    };
    Ok(Some((
        Arc::new(node),
        shape,
        a.seed().clone_ref(py),
        layout,
    )))
}

/// A number operand (as the eager arithmetic takes it: a Python float or int, a NumPy float64
/// scalar, a 0-d float64 ndarray).
pub(crate) fn number(x: &Bound<'_, PyAny>) -> Option<f64> {
    match dual::arg(x) {
        Arg::Const(c) => Some(c),
        Arg::Dual(_) => None,
        Arg::Other => {
            let a = x.cast_exact::<PyArrayDyn<f64>>().ok()?;
            if a.ndim() != 0 {
                return None;
            }
            a.get_owned(vec![0; 0])
        }
    }
}

/// Whether NumPy's error state ignores every floating-point error (as inside the drivers).
fn quiet_errstate(py: Python<'_>) -> PyResult<bool> {
    static CONTEXTVAR: OnceLock<Option<Py<PyAny>>> = OnceLock::new();
    let var = dual::cached(&CONTEXTVAR, || {
        Ok(py
            .import("numpy._core._ufunc_config")
            .and_then(|m| m.getattr("_extobj_contextvar"))
            .ok()
            .map(Bound::unbind))
    })?;
    // NumPy 1: no context variable to watch; nothing is deferred.
    let Some(var) = var else { return Ok(false) };
    let state = var.bind(py).call_method0(intern!(py, "get"))?;
    let known = ERRSTATE.with_borrow(|last| match last {
        Some((s, quiet)) if s.is(&state) => Some(*quiet),
        _ => None,
    });
    if let Some(quiet) = known {
        return Ok(quiet);
    }
    let errs = dual::numpy(py)?.call_method0(intern!(py, "geterr"))?;
    let mut quiet = true;
    for (_, v) in errs.cast::<PyDict>()?.iter() {
        quiet &= v.cast::<PyString>().is_ok_and(|v| v == "ignore");
    }
    let previous = ERRSTATE.with_borrow_mut(|last| last.replace((state.unbind(), quiet)));
    drop(previous);
    Ok(quiet)
}

/// `a op b` as a pending array, or `None` where it runs eagerly.
pub(crate) fn binary<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    op: Op,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !enabled() {
        return Ok(None);
    }
    type Side = (Term, Option<(Vec<usize>, Py<PyAny>, Layout)>);
    let side = |x: &Bound<'py, PyAny>| -> PyResult<Option<Side>> {
        if let Ok(x) = x.cast::<DualArrayBase>() {
            return Ok(operand(py, x)?
                .map(|(n, shape, seed, layout)| (Term::Node(n), Some((shape, seed, layout)))));
        }
        Ok(number(x).map(|c| (Term::Const(c, x.clone().unbind()), None)))
    };
    // The cheap refusals first (small arrays: the Robertson Jacobian's path).
    let (Some((ta, ia)), Some((tb, ib))) = (side(a)?, side(b)?) else {
        return Ok(None);
    };
    // As the eager arithmetic: one shape, one seed (the same object or layout).
    let (shape, seed, rows) = match (ia, ib) {
        (Some((shape, seed, l)), None) | (None, Some((shape, seed, l))) => (shape, seed, l.rows()),
        (Some((sa, da, la)), Some((sb, db, lb))) => {
            if sa != sb || !(da.is(&db) || la == lb) {
                return Ok(None);
            }
            (sa, da, la.rows())
        }
        (None, None) => return Ok(None),
    };
    let size = 1 + ta.size() + tb.size();
    if size > MAX_NODES || !quiet_errstate(py)? {
        return Ok(None);
    }
    let node = Node {
        kind: Kind::Binary(op, ta, tb),
        size,
    };
    pending(py, node, shape, rows, &seed).map(Some)
}

/// `-x` as a pending array, or `None`.
pub(crate) fn neg<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    unary_node(py, x, Kind::Neg)
}

/// `rule(x)` (a NumPy ufunc of the table) as a pending array, or `None` (no SIMD body, not a
/// large first-order array, ...).
pub(crate) fn unary<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    rule: UnaryRule,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !Fusion::fuses(rule) {
        return Ok(None);
    }
    unary_node(py, x, |a| Kind::Unary(rule, a))
}

fn unary_node<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kind: impl FnOnce(Arc<Node>) -> Kind,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !enabled() {
        return Ok(None);
    }
    let Ok(x) = x.cast::<DualArrayBase>() else {
        return Ok(None);
    };
    let Some((node, shape, seed, layout)) = operand(py, x)? else {
        return Ok(None);
    };
    let size = 1 + node.size;
    if size > MAX_NODES {
        return Ok(None);
    }
    pending(
        py,
        Node {
            kind: kind(node),
            size,
        },
        shape,
        layout.rows(),
        &seed,
    )
    .map(Some)
}

// ------------------------------------------------------------------------------------------------
// Evaluation
// ------------------------------------------------------------------------------------------------

/// The arrays of the expression `root`: fused in one pass, or replayed through the eager paths.
fn evaluate(
    py: Python<'_>,
    root: &Arc<Node>,
    shape: &[usize],
    rows: usize,
    seed: &Py<PyAny>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    match fused(py, root, shape, rows, true)? {
        Some((Some(p), t)) => {
            FUSED.fetch_add(1, Ordering::Relaxed);
            Ok((p, t))
        }
        _ => {
            REPLAYED.fetch_add(1, Ordering::Relaxed);
            replay(py, root, seed)
        }
    }
}

/// The operations below `root` and `root`, each once, operands before their uses.
fn post_order(root: &Arc<Node>) -> Vec<&Node> {
    fn visit<'a>(node: &'a Node, seen: &mut HashMap<*const Node, ()>, order: &mut Vec<&'a Node>) {
        if seen.insert(node as *const Node, ()).is_some() {
            return;
        }
        match &node.kind {
            Kind::Leaf(_) => {}
            Kind::Neg(a) | Kind::Unary(_, a) => visit(a, seen, order),
            Kind::Binary(_, a, b) => {
                for t in [a, b] {
                    if let Term::Node(n) = t {
                        visit(n, seen, order);
                    }
                }
            }
        }
        order.push(node);
    }
    let (mut seen, mut order) = (HashMap::new(), Vec::new());
    visit(root, &mut seen, &mut order);
    order
}

/// Decrements the pins of the inputs of an evaluation when it ends (however it ends).
struct Pinned<'a>(Vec<&'a AtomicUsize>);

impl<'a> Pinned<'a> {
    /// Pins every pin counter of `leaves` (incremented here, decremented on drop).
    fn leaves(leaves: &'a [Bound<'_, DualArrayBase>]) -> Self {
        Pinned(
            leaves
                .iter()
                .flat_map(|l| l.get().pins())
                .inspect(|pins| {
                    pins.fetch_add(1, Ordering::AcqRel);
                })
                .collect(),
        )
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        for pins in &self.0 {
            pins.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The primal (if asked for) and tangent arrays of a fused evaluation.
type Evaluated = (Option<Py<PyAny>>, Py<PyAny>);

/// The expression as one [`Fusion`] over its input arrays, in one pass with the thread
/// detached (the primal of the result only if `primal`); `None` if a `+ - * /` result is not
/// finite somewhere (or an input is not as expected), where the eager paths must run.
fn fused(
    py: Python<'_>,
    root: &Arc<Node>,
    shape: &[usize],
    rows: usize,
    primal: bool,
) -> PyResult<Option<Evaluated>> {
    let Some((f, out, leaves)) = compile(py, root) else {
        return Ok(None);
    };
    let n: usize = shape.iter().product();
    if rows != 1 {
        return fused_rows(py, &f, out, &leaves, shape, rows);
    }
    fused_one_row(py, &f, out, &leaves, n, shape, primal)
}

/// The expression `root` as a [`Fusion`]: the instructions, the output and the input arrays
/// (register `i` is `leaves[i]`); `None` if an operation has no instruction.
fn compile<'py>(
    py: Python<'py>,
    root: &Arc<Node>,
) -> Option<(Fusion, FusedVar, Vec<Bound<'py, DualArrayBase>>)> {
    let order = post_order(root);
    // The inputs, each array once.
    let mut index: HashMap<*mut pyo3::ffi::PyObject, usize> = HashMap::new();
    let mut leaves: Vec<Bound<'_, DualArrayBase>> = Vec::new();
    for node in &order {
        if let Kind::Leaf(x) = &node.kind {
            index.entry(x.as_ptr()).or_insert_with(|| {
                leaves.push(x.bind(py).clone());
                leaves.len() - 1
            });
        }
    }
    let mut f = Fusion::new(leaves.len());
    let mut var: HashMap<*const Node, FusedVar> = HashMap::new();
    for node in &order {
        let get = |n: &Arc<Node>| var.get(&Arc::as_ptr(n)).copied();
        let v = match &node.kind {
            Kind::Leaf(x) => index.get(&x.as_ptr()).and_then(|&i| f.input(i)),
            Kind::Neg(a) => get(a).map(|a| f.neg(a)),
            Kind::Unary(rule, a) => get(a).and_then(|a| f.unary(*rule, a)),
            Kind::Binary(op, Term::Node(a), Term::Node(b)) => match (get(a), get(b)) {
                (Some(a), Some(b)) => Some(match op {
                    Op::Add => f.add(a, b),
                    Op::Sub => f.sub(a, b),
                    Op::Mul => f.mul(a, b),
                    Op::Div => f.div(a, b),
                }),
                _ => None,
            },
            // The constant forms, as the eager arithmetic passes a number (a broadcast
            // constant operand of the kernel).
            Kind::Binary(op, Term::Node(a), Term::Const(c, _)) => get(a).map(|a| match op {
                Op::Add => f.add_const(a, *c),
                Op::Sub => f.sub_const(a, *c),
                Op::Mul => f.mul_const(a, *c),
                Op::Div => f.div_const(a, *c),
            }),
            Kind::Binary(op, Term::Const(c, _), Term::Node(b)) => get(b).map(|b| match op {
                Op::Add => f.add_const(b, *c),
                Op::Sub => f.const_sub(*c, b),
                Op::Mul => f.mul_const(b, *c),
                Op::Div => f.const_div(*c, b),
            }),
            Kind::Binary(_, Term::Const(..), Term::Const(..)) => None,
        };
        var.insert(*node as *const Node, v?);
    }
    let out = *var.get(&Arc::as_ptr(root))?;
    Some((f, out, leaves))
}

/// [`fused`] with one tangent row: [`Fusion::eval`] (or [`Fusion::eval_tangent`] without
/// `primal`) over shares of the points on up to one thread per CPU (`split`).
fn fused_one_row(
    py: Python<'_>,
    f: &Fusion,
    out: FusedVar,
    leaves: &[Bound<'_, DualArrayBase>],
    n: usize,
    shape: &[usize],
    primal: bool,
) -> PyResult<Option<Evaluated>> {
    // The inputs' memory, read in place: private arrays, which nothing writes while they are
    // pinned (see the module documentation).
    // (A tangent of ones not made yet is read as 1: `None`.)
    let mut arrays = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let leaf = leaf.get();
        let (p, t) = match leaf.unit_tangent() {
            Some(p) => (p, None),
            None => leaf.parts(py).map(|(p, t)| (p, Some(t)))?,
        };
        let array = |x: &Py<PyAny>| x.bind(py).cast_exact::<PyArrayDyn<f64>>().ok().cloned();
        let p = array(p);
        let t = t.map(array);
        let (Some(p), true) = (p, t.as_ref().is_none_or(Option::is_some)) else {
            return Ok(None);
        };
        arrays.push((p, t.flatten()));
    }
    let mut slices = Vec::with_capacity(arrays.len());
    for (p, t) in &arrays {
        let p = match dual::elements(p) {
            Some(p) if p.len() == n => p,
            _ => return Ok(None),
        };
        let t = match t.as_ref().map(dual::elements) {
            None => None,
            Some(Some(t)) if t.len() == n => Some(t),
            Some(_) => return Ok(None),
        };
        slices.push((p, t));
    }
    let inputs: Vec<(&[f64], Option<&[f64]>)> =
        slices.iter().map(|(p, t)| (&**p, t.as_deref())).collect();
    let tshape: Vec<usize> = std::iter::once(1).chain(shape.iter().copied()).collect();
    let mut out_p = primal.then(|| Fresh::new(py, shape.to_vec()));
    let mut out_t = Fresh::new(py, tshape);
    let finite = {
        let pins = Pinned::leaves(leaves);
        let (op, ot) = (out_p.as_mut().map(Fresh::data), out_t.data());
        let done = py.detach(|| split(f, out, &inputs, op, ot));
        drop(pins);
        done.map_err(errors::kernel)?
    };
    if !finite {
        return Ok(None);
    }
    Ok(Some((
        out_p.map(|p| p.array().into_any().unbind()),
        out_t.array().into_any().unbind(),
    )))
}

/// [`fused`] with `k > 1` tangent rows: [`Fusion::eval_rows`] over the inputs' primals and
/// tangent rows read in place (a view's rows `stride` apart, as `Operand::Rows`), in two
/// blocks of rows on two threads for a large block (`split_rows`). The primal is always
/// computed (it is needed for the tangents all the same).
fn fused_rows(
    py: Python<'_>,
    f: &Fusion,
    out: FusedVar,
    leaves: &[Bound<'_, DualArrayBase>],
    shape: &[usize],
    k: usize,
) -> PyResult<Option<Evaluated>> {
    let n: usize = shape.iter().product();
    let tshape: Vec<usize> = std::iter::once(k).chain(shape.iter().copied()).collect();
    let mut out_p = Fresh::new(py, shape.to_vec());
    let mut out_t = Fresh::new(py, tshape);
    if fill_rows(py, f, out, leaves, k, out_p.data(), out_t.data(), n)? != Some(true) {
        return Ok(None);
    }
    Ok(Some((
        Some(out_p.array().into_any().unbind()),
        out_t.array().into_any().unbind(),
    )))
}

/// The evaluation of [`fused_rows`] into `out_p` (`n` values) and `out_t` (`k` rows of `n`,
/// `out_stride` apart): `Some(finite)`, or `None` if an input is not as expected (nothing
/// written).
#[allow(clippy::too_many_arguments)]
fn fill_rows(
    py: Python<'_>,
    f: &Fusion,
    out: FusedVar,
    leaves: &[Bound<'_, DualArrayBase>],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
    out_stride: usize,
) -> PyResult<Option<bool>> {
    let n = out_p.len();
    let mut arrays = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let (p, t) = leaf.get().parts(py)?;
        let array = |x: &Py<PyAny>| x.bind(py).cast_exact::<PyArrayDyn<f64>>().ok().cloned();
        let (Some(p), Some(t)) = (array(p), array(t)) else {
            return Ok(None);
        };
        if t.shape().first() != Some(&k) {
            return Ok(None);
        }
        arrays.push((p, t));
    }
    let mut slices = Vec::with_capacity(arrays.len());
    for (p, t) in &arrays {
        match (dual::elements(p), dual::tangent_rows(t)) {
            (Some(p), Some((t, stride))) if p.len() == n => slices.push((p, t, stride)),
            _ => return Ok(None),
        }
    }
    let inputs: Vec<FusedRows<'_>> = slices
        .iter()
        .map(|(p, t, stride)| FusedRows {
            primal: p,
            tangent: t,
            stride: *stride,
        })
        .collect();
    let finite = {
        let pins = Pinned::leaves(leaves);
        let done = py.detach(|| split_rows(f, out, &inputs, k, out_p, out_t, out_stride));
        drop(pins);
        done.map_err(errors::kernel)?
    };
    Ok(Some(finite))
}

/// [`Fusion::eval_rows_into`] in two blocks of rows, the second on the helper thread
/// (`crate::par`), for blocks of at least `par::SPLIT_ABOVE` tangents; the same values (each
/// block is the evaluation on those rows; the second block's primal goes to a scratch buffer).
fn split_rows(
    f: &Fusion,
    out: FusedVar,
    inputs: &[FusedRows<'_>],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
    out_stride: usize,
) -> Result<bool, kernels::KernelError> {
    let n = out_p.len();
    let h = k / 2;
    if k < 2 || n.saturating_mul(k) < crate::par::SPLIT_ABOVE || out_t.len() < h * out_stride {
        return f.eval_rows_into(out, inputs, out_p, out_t, out_stride);
    }
    let (lo, hi) = out_t.split_at_mut(h * out_stride);
    let block = |j0: usize, j1: usize| -> Vec<FusedRows<'_>> {
        inputs.iter().map(|x| x.row_block(j0, j1, n)).collect()
    };
    let (ins_lo, ins_hi) = (block(0, h), block(h, k));
    let (mut r_lo, mut r_hi) = (Ok(true), Ok(true));
    let mut scratch = vec![0.0; n];
    crate::par::both(
        || {
            r_lo = f.eval_rows_into(
                out,
                &ins_lo,
                out_p,
                &mut lo[..(h - 1) * out_stride + n],
                out_stride,
            )
        },
        || r_hi = f.eval_rows_into(out, &ins_hi, &mut scratch, hi, out_stride),
    );
    Ok(r_lo? && r_hi?)
}

/// [`Fusion::eval`] over contiguous shares of the points, one per thread (one per
/// [`POINTS_PER_THREAD`] points, at most the available parallelism and 8), the first on this
/// thread. The new outputs fault in page by page as they are first written: in parallel too.
fn split(
    f: &Fusion,
    out: FusedVar,
    inputs: &[(&[f64], Option<&[f64]>)],
    out_p: Option<&mut [f64]>,
    out_t: &mut [f64],
) -> Result<bool, kernels::KernelError> {
    let cpus = crate::par::cpus();
    let eval = |ins: &[(&[f64], Option<&[f64]>)], p: Option<&mut [f64]>, t: &mut [f64]| match p {
        Some(p) => f.eval(out, ins, p, t),
        None => f.eval_tangent(out, ins, t),
    };
    let n = out_t.len();
    let parts = (n / POINTS_PER_THREAD).clamp(1, cpus.min(8));
    let wrong = |(p, t): &(&[f64], Option<&[f64]>)| p.len() != n || t.is_some_and(|t| t.len() != n);
    if parts < 2 || out_p.as_ref().is_some_and(|p| p.len() != n) || inputs.iter().any(wrong) {
        return eval(inputs, out_p, out_t);
    }
    let per = n.div_ceil(parts).next_multiple_of(8);
    let share = |start: usize, len: usize| -> Vec<(&[f64], Option<&[f64]>)> {
        inputs
            .iter()
            .map(|(p, t)| (&p[start..start + len], t.map(|t| &t[start..start + len])))
            .collect()
    };
    let p_shares: Vec<Option<&mut [f64]>> = match out_p {
        Some(p) => p.chunks_mut(per).map(Some).collect(),
        None => (0..n.div_ceil(per)).map(|_| None).collect(),
    };
    std::thread::scope(|scope| {
        let mut shares = p_shares.into_iter().zip(out_t.chunks_mut(per)).enumerate();
        let first = shares.next();
        let handles: Vec<_> = shares
            .map(|(i, (p, t))| {
                let ins = share(i * per, t.len());
                scope.spawn(move || eval(&ins, p, t))
            })
            .collect();
        let mut finite = match first {
            Some((_, (p, t))) => eval(&share(0, t.len()), p, t),
            None => Ok(true),
        };
        for h in handles {
            let r = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            finite = match (finite, r) {
                (Ok(a), Ok(b)) => Ok(a && b),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        finite
    })
}

/// Sets [`REPLAYING`] for its lifetime.
struct Replaying(bool);

impl Replaying {
    fn start() -> Self {
        Replaying(REPLAYING.try_with(|r| r.replace(true)).unwrap_or(false))
    }
}

impl Drop for Replaying {
    fn drop(&mut self) {
        let previous = self.0;
        let _ = REPLAYING.try_with(|r| r.set(previous));
    }
}

/// The expression operation by operation through the eager paths (which then do not defer),
/// with NumPy's floating-point errors ignored (binary operations are only deferred in that
/// state): the arrays the eager operations would have given, whatever path each takes.
///
/// The inputs are copied first, with no Python code running, so that the Python
/// implementations reading them hand out only the copies.
fn replay(py: Python<'_>, root: &Arc<Node>, seed: &Py<PyAny>) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let _replaying = Replaying::start();
    let order = post_order(root);
    let mut values: HashMap<*const Node, Bound<'_, PyAny>> = HashMap::new();
    for node in &order {
        if let Kind::Leaf(x) = &node.kind {
            let (p, t) = x.get().parts(py)?;
            let copy = |a: &Py<PyAny>| -> PyResult<Bound<'_, PyArrayDyn<f64>>> {
                Ok(a.bind(py)
                    .call_method0(intern!(py, "copy"))?
                    .cast_into::<PyArrayDyn<f64>>()?)
            };
            let (p, t) = (copy(p)?, copy(t)?);
            values.insert(*node as *const Node, dual::new_dual_array(py, p, t, seed)?);
        }
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("all", "ignore")?;
    let errstate = dual::numpy(py)?
        .getattr(intern!(py, "errstate"))?
        .call((), Some(&kwargs))?;
    errstate.call_method0(intern!(py, "__enter__"))?;
    let result = replay_steps(py, &order, &mut values);
    let none = py.None();
    errstate.call_method1(intern!(py, "__exit__"), (&none, &none, &none))?;
    result?;
    let root = values
        .get(&Arc::as_ptr(root))
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("duals: lost replay result"))?
        .cast::<DualArrayBase>()?
        .clone();
    let (p, t) = root.get().parts(py)?;
    // New arrays of its own (a Python implementation's result may share memory).
    let copy = |a: &Py<PyAny>| -> PyResult<Py<PyAny>> {
        Ok(a.bind(py).call_method0(intern!(py, "copy"))?.unbind())
    };
    Ok((copy(p)?, copy(t)?))
}

fn replay_steps<'py>(
    py: Python<'py>,
    order: &[&Node],
    values: &mut HashMap<*const Node, Bound<'py, PyAny>>,
) -> PyResult<()> {
    let lost = || pyo3::exceptions::PyRuntimeError::new_err("duals: replay order");
    for node in order {
        let get = |n: &Arc<Node>| values.get(&Arc::as_ptr(n)).cloned().ok_or_else(lost);
        let v = match &node.kind {
            Kind::Leaf(_) => continue,
            Kind::Neg(a) => {
                let a = get(a)?;
                match dual::array_neg(py, &a)? {
                    Some(r) => r,
                    None => dual::core(py)?
                        .getattr(intern!(py, "_DualBase"))?
                        .getattr(intern!(py, "__neg__"))?
                        .call1((a,))?,
                }
            }
            Kind::Unary(rule, a) => eager_unary(py, &get(a)?, *rule)?,
            Kind::Binary(op, a, b) => {
                let term = |t: &Term| match t {
                    Term::Node(n) => get(n),
                    Term::Const(_, c) => Ok(c.bind(py).clone()),
                };
                dual::array_op(py, &term(a)?, &term(b)?, *op)?.into_bound_py_any(py)?
            }
        };
        values.insert(*node as *const Node, v);
    }
    Ok(())
}

/// `rule(x)` with the kernel the eager ufunc runs (`_native.unary`: [`kernels::unary_rule`]).
fn eager_unary<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    rule: UnaryRule,
) -> PyResult<Bound<'py, PyAny>> {
    let x = x.cast::<DualArrayBase>()?;
    let (p, t) = x.get().parts(py)?;
    let (p, t) = (
        p.bind(py).cast::<PyArrayDyn<f64>>()?,
        t.bind(py).cast::<PyArrayDyn<f64>>()?,
    );
    let shape = p.shape().to_vec();
    let tshape = t.shape().to_vec();
    let (Some(pe), Some(te)) = (dual::elements(p), dual::elements(t)) else {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "duals: a replayed array has no elements",
        ));
    };
    let k = tshape.first().copied().unwrap_or(1);
    let (mut op, mut ot) = (Fresh::new(py, shape), Fresh::new(py, tshape));
    kernels::unary_rule(rule, &pe, &te, k, op.data(), ot.data()).map_err(errors::kernel)?;
    dual::new_dual_array(py, op.array(), ot.array(), x.get().seed())
}
