//! The one place the crate chooses between rayon and a plain loop for index-parallel work.
#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// `f(i)` for every `i` in `0..n`, in order; in parallel when the `parallel` feature is on.
pub(crate) fn map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(feature = "parallel")]
    return (0..n).into_par_iter().map(f).collect();
    #[cfg(not(feature = "parallel"))]
    return (0..n).map(f).collect();
}
