//! The daemon: the registry of projects, engines and tasks, the request handler, and one
//! scheduler thread per started project.

pub mod handler;
pub mod metrics_file;
pub mod prometheus;
pub mod registry;
pub mod scheduler;
pub mod show;
