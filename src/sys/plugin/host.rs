//! `struct etmem_host` of `include/etmem/engine.h`: the functions a `.so` plug-in calls
//! (through the header's `etmem_*` wrappers) to read its handles and write its answers.
//! Each looks its handle up in the table of [`super::handles`] and checks its kind, so a
//! wrong handle gets NULL, 0 or -1; none lets a panic unwind into C.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::Ordering;

use super::handles::{get, Entry, Subject};
use super::ABI_VERSION;
use crate::log::Level;

/// Most bytes one engine command's answer may hold.
pub const ANSWER_MAX: usize = 1 << 20;

/// `struct etmem_host`, field for field.
#[repr(C)]
pub struct EtmemHost {
    abi_version: c_uint,
    size: c_uint,
    config_get: unsafe extern "C" fn(*const c_void, *const c_char) -> *const c_char,
    config_key: extern "C" fn(*const c_void, usize) -> *const c_char,
    engine_name: extern "C" fn(*const c_void) -> *const c_char,
    project_get: unsafe extern "C" fn(*const c_void, *const c_char) -> *const c_char,
    engine_data: extern "C" fn(*const c_void) -> *mut c_void,
    engine_set_data: extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    task_name: extern "C" fn(*const c_void) -> *const c_char,
    task_type: extern "C" fn(*const c_void) -> *const c_char,
    task_value: extern "C" fn(*const c_void) -> *const c_char,
    task_max_threads: extern "C" fn(*const c_void) -> c_int,
    task_swap_flag: extern "C" fn(*const c_void) -> c_int,
    task_engine: extern "C" fn(*const c_void) -> *mut c_void,
    task_data: extern "C" fn(*const c_void) -> *mut c_void,
    task_set_data: extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    task_pids: unsafe extern "C" fn(*const c_void, *mut c_uint, usize) -> c_long,
    pid_value: extern "C" fn(*const c_void) -> c_uint,
    pid_task: extern "C" fn(*const c_void) -> *mut c_void,
    pid_data: extern "C" fn(*const c_void) -> *mut c_void,
    pid_set_data: extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    answer_write: unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> c_int,
    log: unsafe extern "C" fn(c_int, *const c_char),
}

/// The table every loaded plug-in's `etmem_host` points to.
pub static HOST: EtmemHost = EtmemHost {
    abi_version: ABI_VERSION,
    size: std::mem::size_of::<EtmemHost>() as c_uint,
    config_get,
    config_key,
    engine_name,
    project_get,
    engine_data: data,
    engine_set_data: set_data_engine,
    task_name,
    task_type,
    task_value,
    task_max_threads,
    task_swap_flag,
    task_engine,
    task_data: data,
    task_set_data: set_data_task,
    task_pids,
    pid_value,
    pid_task,
    pid_data: data,
    pid_set_data: set_data_pid,
    answer_write,
    log,
};

/// `f()`, or `fallback` if it panicked.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The live entry a handle names.
fn entry(h: *const c_void) -> Option<std::sync::Arc<Entry>> {
    get(h as usize)
}

/// The C string at `p` (`None` for NULL).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn text<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: the caller's promise; not NULL.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/// A pointer to the string `pick` finds in the entry of `h`, NULL when it finds none.
/// The string lives as long as the handle: the table holds the entry.
fn string_of(
    h: *const c_void,
    pick: impl FnOnce(&Subject) -> Option<&std::ffi::CString>,
) -> *const c_char {
    guarded(ptr::null(), || {
        entry(h)
            .and_then(|e| pick(&e.object).map(|s| s.as_ptr()))
            .unwrap_or(ptr::null())
    })
}

/// The value of `key` in pairs of C strings (the last with that key).
///
/// # Safety
/// `key` is NULL or a NUL-terminated string.
unsafe fn lookup(
    pairs: &[(std::ffi::CString, std::ffi::CString)],
    key: *const c_char,
) -> Option<&std::ffi::CString> {
    // SAFETY: the caller's promise.
    let key = unsafe { text(key) }?;
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k.as_c_str() == key)
        .map(|(_, v)| v)
}

unsafe extern "C" fn config_get(cfg: *const c_void, key: *const c_char) -> *const c_char {
    string_of(cfg, |o| match o {
        // SAFETY: the plug-in passes a C string (or NULL), as the header says.
        Subject::Config(pairs) => unsafe { lookup(pairs, key) },
        _ => None,
    })
}

extern "C" fn config_key(cfg: *const c_void, i: usize) -> *const c_char {
    string_of(cfg, |o| match o {
        Subject::Config(pairs) => pairs.get(i).map(|(k, _)| k),
        _ => None,
    })
}

extern "C" fn engine_name(eng: *const c_void) -> *const c_char {
    string_of(eng, |o| match o {
        Subject::Engine { name, .. } => Some(name),
        _ => None,
    })
}

unsafe extern "C" fn project_get(eng: *const c_void, key: *const c_char) -> *const c_char {
    string_of(eng, |o| match o {
        // SAFETY: the plug-in passes a C string (or NULL), as the header says.
        Subject::Engine { project, .. } => unsafe { lookup(project, key) },
        _ => None,
    })
}

/// The plug-in's pointer for any kind of handle (each setter checks the kind).
extern "C" fn data(h: *const c_void) -> *mut c_void {
    guarded(ptr::null_mut(), || {
        entry(h).map_or(ptr::null_mut(), |e| {
            e.data.load(Ordering::Acquire) as *mut c_void
        })
    })
}

/// Set the plug-in's pointer of `h` if `kind` accepts its object: 0, else -1.
fn set_data(h: *mut c_void, d: *mut c_void, kind: fn(&Subject) -> bool) -> c_int {
    guarded(-1, || match entry(h) {
        Some(e) if kind(&e.object) => {
            e.data.store(d as usize, Ordering::Release);
            0
        }
        _ => -1,
    })
}

extern "C" fn set_data_engine(h: *mut c_void, d: *mut c_void) -> c_int {
    set_data(h, d, |o| matches!(o, Subject::Engine { .. }))
}

extern "C" fn set_data_task(h: *mut c_void, d: *mut c_void) -> c_int {
    set_data(h, d, |o| matches!(o, Subject::Task { .. }))
}

extern "C" fn set_data_pid(h: *mut c_void, d: *mut c_void) -> c_int {
    set_data(h, d, |o| matches!(o, Subject::Pid { .. }))
}

extern "C" fn task_name(tk: *const c_void) -> *const c_char {
    string_of(tk, |o| match o {
        Subject::Task { name, .. } => Some(name),
        _ => None,
    })
}

extern "C" fn task_type(tk: *const c_void) -> *const c_char {
    string_of(tk, |o| match o {
        Subject::Task { kind, .. } => Some(kind),
        _ => None,
    })
}

extern "C" fn task_value(tk: *const c_void) -> *const c_char {
    string_of(tk, |o| match o {
        Subject::Task { value, .. } => Some(value),
        _ => None,
    })
}

/// A number of the task `tk` names, `fallback` for another handle.
fn task_number<T>(tk: *const c_void, fallback: T, pick: impl FnOnce(&Subject) -> Option<T>) -> T
where
    T: Copy,
{
    guarded(fallback, || {
        entry(tk).and_then(|e| pick(&e.object)).unwrap_or(fallback)
    })
}

extern "C" fn task_max_threads(tk: *const c_void) -> c_int {
    task_number(tk, -1, |o| match o {
        Subject::Task { max_threads, .. } => Some(*max_threads),
        _ => None,
    })
}

extern "C" fn task_swap_flag(tk: *const c_void) -> c_int {
    task_number(tk, -1, |o| match o {
        Subject::Task { swap_flag, .. } => Some(*swap_flag),
        _ => None,
    })
}

extern "C" fn task_engine(tk: *const c_void) -> *mut c_void {
    task_number(tk, 0, |o| match o {
        Subject::Task { engine, .. } => Some(*engine),
        _ => None,
    }) as *mut c_void
}

unsafe extern "C" fn task_pids(tk: *const c_void, out: *mut c_uint, max: usize) -> c_long {
    guarded(-1, || {
        let Some(e) = entry(tk) else {
            return -1;
        };
        let Subject::Task { pids, .. } = &e.object else {
            return -1;
        };
        let found = pids();
        if !out.is_null() {
            for (i, &p) in found.iter().take(max).enumerate() {
                // SAFETY: the plug-in gives room for `max` pids at `out`.
                unsafe { out.add(i).write(p) };
            }
        }
        c_long::try_from(found.len()).unwrap_or(c_long::MAX)
    })
}

extern "C" fn pid_value(tpid: *const c_void) -> c_uint {
    task_number(tpid, 0, |o| match o {
        Subject::Pid { pid, .. } => Some(*pid),
        _ => None,
    })
}

extern "C" fn pid_task(tpid: *const c_void) -> *mut c_void {
    task_number(tpid, 0, |o| match o {
        Subject::Pid { task, .. } => Some(*task),
        _ => None,
    }) as *mut c_void
}

unsafe extern "C" fn answer_write(answer: *mut c_void, buf: *const c_char, len: usize) -> c_int {
    guarded(-1, || {
        let Some(e) = entry(answer) else {
            return -1;
        };
        let Subject::Answer(out) = &e.object else {
            return -1;
        };
        if len == 0 {
            return 0;
        }
        if buf.is_null() {
            return -1;
        }
        // SAFETY: the plug-in gives `len` readable bytes at `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        let mut out = crate::error::lock(out);
        if bytes.iter().any(|&b| b == 0xff || b == 0xfe) || out.len() + len > ANSWER_MAX {
            return -1;
        }
        out.extend_from_slice(bytes);
        0
    })
}

unsafe extern "C" fn log(level: c_int, msg: *const c_char) {
    guarded((), || {
        // SAFETY: the plug-in passes a C string (or NULL), as the header says.
        if let Some(msg) = unsafe { text(msg) } {
            let level = Level::from_number(i64::from(level)).unwrap_or(Level::Info);
            crate::log::emit(
                level,
                format_args!("plug-in: {}", msg.to_string_lossy().trim_end()),
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::handles::{c_string, Handle};
    use super::*;
    use std::sync::Mutex;

    fn ptr(h: &Handle) -> *mut c_void {
        h.id() as *mut c_void
    }

    fn s(p: *const c_char) -> Option<String> {
        // SAFETY: the accessors return NULL or a string of a live handle.
        unsafe { text(p) }.map(|c| c.to_string_lossy().into_owned())
    }

    #[test]
    fn accessors_check_the_handle_and_its_kind() {
        let cfg = Handle::new(Subject::Config(vec![
            (c_string("k"), c_string("1")),
            (c_string("k"), c_string("2")),
        ]));
        let eng = Handle::new(Subject::Engine {
            name: c_string("mine"),
            project: vec![(c_string("loop"), c_string("3"))],
        });
        let tk = Handle::new(Subject::Task {
            name: c_string("t"),
            kind: c_string("pid"),
            value: c_string("1"),
            max_threads: 2,
            swap_flag: 1,
            engine: eng.id(),
            pids: Box::new(|| vec![5, 6, 7]),
        });
        let k = c"k".as_ptr();
        // SAFETY: C strings and handles (live or not), as a plug-in passes them.
        unsafe {
            assert_eq!(s(config_get(ptr(&cfg), k)).as_deref(), Some("2"));
            assert_eq!(s(config_get(ptr(&cfg), c"x".as_ptr())), None);
            assert_eq!(s(config_get(ptr(&cfg), ptr::null())), None);
            assert_eq!(s(config_get(ptr(&eng), k)), None, "an engine is no config");
            assert_eq!(
                s(project_get(ptr(&eng), c"loop".as_ptr())).as_deref(),
                Some("3")
            );
            let mut pids = [0; 2];
            assert_eq!(task_pids(ptr(&tk), pids.as_mut_ptr(), 2), 3);
            assert_eq!(pids, [5, 6]);
            assert_eq!(task_pids(ptr(&eng), pids.as_mut_ptr(), 2), -1);
        }
        assert_eq!(s(config_key(ptr(&cfg), 1)).as_deref(), Some("k"));
        assert_eq!(s(config_key(ptr(&cfg), 2)), None);
        assert_eq!(s(engine_name(ptr(&eng))).as_deref(), Some("mine"));
        assert_eq!(s(task_name(ptr(&tk))).as_deref(), Some("t"));
        assert_eq!(
            (task_max_threads(ptr(&tk)), task_swap_flag(ptr(&tk))),
            (2, 1)
        );
        assert_eq!(task_engine(ptr(&tk)), ptr(&eng));
        assert_eq!(set_data_engine(ptr(&tk), 8 as *mut c_void), -1);
        assert_eq!(set_data_task(ptr(&tk), 8 as *mut c_void), 0);
        assert_eq!(data(ptr(&tk)), 8 as *mut c_void);
        let stale = ptr(&cfg);
        drop(cfg);
        assert_eq!(s(config_key(stale, 0)), None);
        assert_eq!(task_max_threads(stale), -1);
        assert_eq!(set_data_task(stale, ptr::null_mut()), -1);
    }

    #[test]
    fn answers_refuse_the_wire_terminators_and_overflow() {
        let a = Handle::new(Subject::Answer(Mutex::new(Vec::new())));
        // SAFETY: byte buffers of the lengths given.
        unsafe {
            assert_eq!(answer_write(ptr(&a), c"ok\n".as_ptr(), 3), 0);
            assert_eq!(answer_write(ptr(&a), b"\xff".as_ptr().cast(), 1), -1);
            assert_eq!(answer_write(ptr(&a), ptr::null(), 1), -1);
            assert_eq!(answer_write(ptr(&a), ptr::null(), 0), 0);
            let big = vec![b'x'; ANSWER_MAX];
            assert_eq!(answer_write(ptr(&a), big.as_ptr().cast(), big.len()), -1);
            let tk = Handle::new(Subject::Pid { pid: 1, task: 0 });
            assert_eq!(answer_write(ptr(&tk), c"x".as_ptr(), 1), -1);
        }
        assert_eq!(a.answer(), b"ok\n");
    }
}
