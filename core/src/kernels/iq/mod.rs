//! Internals of [`super`] (the i-quant, ternary and FP4 kernels): block layouts, lookup
//! tables, scalar references and SIMD paths.

pub(crate) mod fp4;
pub(crate) mod grid_quants;
pub(crate) mod grids;
pub(crate) mod layout;
pub(crate) mod nonlinear;
pub(crate) mod tables;
pub(crate) mod ternary;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod simd128;
