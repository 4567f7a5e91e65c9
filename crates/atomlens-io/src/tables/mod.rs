//! Result tables, one writer per table: columns ([`columns`]), particles, counts, facets,
//! defects and comparisons ([`particles`]), and the batch summary ([`batch`]). The CLI writes
//! them to files, the page offers the same bytes as downloads.
pub mod batch;
pub mod columns;
pub mod particles;

pub use batch::*;
pub use columns::*;
pub use particles::*;
