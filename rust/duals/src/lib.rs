//! Exact forward-mode derivatives: dual, hyper-dual and second-order numbers.
