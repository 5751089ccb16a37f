//! etmem: tiered memory expansion for Linux. A daemon (`etmemd`) watches which pages of
//! chosen processes are hot and which are cold and moves cold memory out of DRAM; a client
//! (`etmem`) drives it; `etmem-scan` and `etmem-swap` do one scan or one swap for scripts.
//!
//! Layers, top to bottom (a layer calls only those below it): `applets`, `rpc`, `config`,
//! `daemon`, `engine`, `track`, `act`, `sys`; `types` and `error` are shared vocabulary.

pub mod act;
pub mod applets;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod json;
pub mod log;
pub mod rpc;
pub mod sys;
pub mod track;
pub mod types;
