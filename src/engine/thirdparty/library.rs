//! Upstream's form of a thirdparty engine: a shared object (`libname=`) whose `struct
//! engine_ops` (`ops_name=`) etmemd loads and drives through its nine callbacks (spec
//! §8.2). Only in a build with the `dlopen` feature, which a static binary cannot have.

use crate::config::ThirdpartyConf;
use crate::engine::Engine;
use crate::error::{Error, Kind, Result};
use crate::sys::trusted_file::TrustedFile;

/// The engine for a `.so` plug-in whose file `file` has passed the plug-in checks: load
/// it and find `ops_name` in it. The error's message is the reason alone.
pub fn load(
    _conf: &ThirdpartyConf,
    _file: TrustedFile,
    _ops_name: &str,
) -> Result<Box<dyn Engine>> {
    Err(Error::new(
        Kind::Unsupported,
        "loading .so plug-ins is built by the dlopen form's own change, not in this build yet",
    ))
}
