//! `libetmemd_scan.so`: upstream etmem's exported scan library (spec §10) for C programs
//! and plug-ins, with the names, structs and signatures of `include/etmem/scan.h`, built
//! on etmem's own access tracking ([`etmem::track::export`]) instead of openEuler's
//! `idle_pages` alone.
//!
//! The C functions and every raw pointer live in `sys`; the layouts in `abi`, the checks
//! on what a caller passes in `checks`, and what is kept between calls in `sessions`.

mod abi;
mod checks;
mod sessions;
mod sys;
