//! `.so` plug-in engines (`include/etmem/engine.h`): loading one ([`ops::Plugin`]),
//! the opaque handles it is given ([`handles`]) and the functions it may call
//! ([`host`]). Only in a build with the `dlopen` feature.

pub mod handles;
pub mod host;
pub mod ops;

/// `ETMEM_ENGINE_ABI_VERSION` of `include/etmem/engine.h`: a plug-in built for another
/// is refused.
pub const ABI_VERSION: std::ffi::c_uint = 1;
