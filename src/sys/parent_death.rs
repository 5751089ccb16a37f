//! Dying with one's parent (`PR_SET_PDEATHSIG`): child processes of the test workload
//! must not outlive it when a test kills it.

use crate::error::{Error, Result};

/// Ask the kernel to send SIGKILL to this process when its parent exits.
pub fn kill_me_with_parent() -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value; no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if r != 0 {
        return Err(Error::io(
            "prctl(PR_SET_PDEATHSIG)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
