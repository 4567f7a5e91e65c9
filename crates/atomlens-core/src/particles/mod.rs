//! Supported nanoparticles: segmentation and shape ([`segment`]), surface columns and facets,
//! each particle's own lattice ([`lattice`]), atom counting ([`counting`]), alloy ordering
//! ([`ordering`]), defects of the column graph ([`defects`]), the whole chain in one call
//! ([`chain`]) and the identical-location comparison of two images ([`compare`]).
pub mod chain;
pub mod compare;
pub mod counting;
pub mod defects;
pub mod lattice;
pub mod ordering;
pub mod segment;
