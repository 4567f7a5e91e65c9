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

/// `f(i, row)` for every row `i` of `buf` (rows of `w` values); in parallel when the `parallel`
/// feature is on.
pub(crate) fn rows<T: Send>(buf: &mut [T], w: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if w == 0 {
        return;
    }
    #[cfg(feature = "parallel")]
    buf.par_chunks_mut(w).enumerate().for_each(|(i, row)| f(i, row));
    #[cfg(not(feature = "parallel"))]
    buf.chunks_mut(w).enumerate().for_each(|(i, row)| f(i, row));
}
