//! Strain: geometric phase analysis of the image ([`gpa`]) and strain from fitted column
//! positions ([`columns`]); both decompose a deformation gradient with
//! [`crate::math::deformation`].
pub mod columns;
pub mod gpa;
