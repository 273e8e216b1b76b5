//! A small dense row-major matrix for driver results.

use core::ops::{Index, IndexMut};

/// A dense `nrows × ncols` matrix stored row-major: element `(i, j)` is `data[i * ncols + j]`.
///
/// Jacobians are `m × n` with `J[(i, j)] = ∂fᵢ/∂xⱼ`; Hessians are `n × n`.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<F> {
    nrows: usize,
    ncols: usize,
    data: Vec<F>,
}

impl<F: Copy + Default> Matrix<F> {
    /// A matrix of zeros (`F::default()`).
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        Self {
            nrows,
            ncols,
            data: vec![F::default(); nrows * ncols],
        }
    }
}

impl<F> Matrix<F> {
    /// A matrix from row-major data. Returns `None` when `data.len() != nrows * ncols`.
    pub fn from_row_major(nrows: usize, ncols: usize, data: Vec<F>) -> Option<Self> {
        (nrows.checked_mul(ncols) == Some(data.len())).then_some(Self { nrows, ncols, data })
    }
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[F] {
        &self.data[i * self.ncols..(i + 1) * self.ncols]
    }
    /// The row-major data.
    pub fn as_slice(&self) -> &[F] {
        &self.data
    }
    /// The row-major data, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [F] {
        &mut self.data
    }
    /// The row-major data, by value.
    pub fn into_vec(self) -> Vec<F> {
        self.data
    }
}

impl<F> Index<(usize, usize)> for Matrix<F> {
    type Output = F;
    fn index(&self, (i, j): (usize, usize)) -> &F {
        assert!(
            i < self.nrows && j < self.ncols,
            "index ({i}, {j}) out of bounds"
        );
        &self.data[i * self.ncols + j]
    }
}

impl<F> IndexMut<(usize, usize)> for Matrix<F> {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut F {
        assert!(
            i < self.nrows && j < self.ncols,
            "index ({i}, {j}) out of bounds"
        );
        &mut self.data[i * self.ncols + j]
    }
}
