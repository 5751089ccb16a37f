//! etmem: tiered memory expansion for Linux. A daemon (`etmemd`) watches which pages of
//! chosen processes are hot and which are cold and moves cold memory out of DRAM; a client
//! (`etmem`) drives it; `etmem-scan` and `etmem-swap` do one scan or one swap for scripts.
//!
//! Layers, top to bottom; a module imports only from layers below its own:
//!
//! ```text
//! applets                      the four programs: arguments, one library call, output
//! daemon                       registry, request handler, scheduler threads, project show
//! engine                       the engine contract (Engine, TaskRun, TaskStatus, Stop), the
//!                              cold pipeline, and the policies
//! config track act rpc         config files; access tracking; swap/migrate actuators; the
//!                              wire protocol (used by daemon and the client applet)
//! sys                          the operating system behind safe functions (all raw calls)
//! types error log json sort    shared vocabulary, the error type, the log, the JSON writer,
//!                              the small sort
//! ```
//!
//! Modules of one layer do not import each other (`tests/layers.rs` checks the map).
//!
//! Rules the compiler keeps (the `[lints]` of Cargo.toml, allowed again only in `sys`):
//! raw code only in `sys`, each block with a `// SAFETY:` comment, every public item
//! documented; no standard-library sort (`sort` instead: the binary's size, see there).

#![warn(clippy::disallowed_methods)]

pub mod act;
pub mod applets;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod json;
pub mod log;
pub mod rpc;
pub mod sort;
pub mod sys;
pub mod track;
pub mod types;
