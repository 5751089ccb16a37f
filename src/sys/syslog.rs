//! syslog(3), for the daemon's log (ident `etmemd`, facility daemon).

use std::ffi::CString;

/// Open the connection to syslog once; later `send` calls use it.
pub fn open() {
    static IDENT: &std::ffi::CStr = c"etmemd";
    // SAFETY: IDENT is a 'static NUL-terminated string, as openlog requires (it keeps the
    // pointer); the flags are plain integers.
    unsafe {
        libc::openlog(
            IDENT.as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    };
}

/// Send one message at `priority` (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG).
pub fn send(priority: libc::c_int, msg: &str) {
    let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: both strings are NUL-terminated and live across the call; the "%s" format
    // consumes exactly the one string argument given, so no format injection is possible.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) };
}
