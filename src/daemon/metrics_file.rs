//! `etmemd --metrics-file PATH`: the Prometheus text of every project, rewritten whole
//! (beside it, then renamed: a reader never sees half a file) when the daemon starts and
//! after every cycle, for node_exporter's textfile collector.

use std::path::PathBuf;

use super::prometheus;
use super::registry::Registry;
use crate::sys::replace_file;

/// Where the metrics go, and the last failure to write them (logged once until it
/// changes, not every cycle).
#[derive(Debug)]
pub struct MetricsFile {
    path: PathBuf,
    failing: Option<String>,
}

impl MetricsFile {
    /// Metrics to be written to `path`.
    pub fn new(path: PathBuf) -> MetricsFile {
        MetricsFile {
            path,
            failing: None,
        }
    }

    /// Rewrite the file from `reg`. A failure is logged (a full disk must not stop the
    /// daemon), once per distinct error; the recovery is logged too.
    pub fn write(&mut self, reg: &Registry) {
        let text = prometheus::render(reg, None);
        // 0644: node_exporter usually runs as another user.
        match replace_file::replace(&self.path, text.as_bytes(), 0o644) {
            Ok(()) => {
                if self.failing.take().is_some() {
                    crate::log_info!("metrics file {} written again", self.path.display());
                }
            }
            Err(e) => {
                if self.failing.as_deref() != Some(e.as_str()) {
                    crate::log_warn!("cannot write the metrics file: {e}");
                    self.failing = Some(e);
                }
            }
        }
    }
}
