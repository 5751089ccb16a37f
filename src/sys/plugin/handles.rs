//! The opaque handles a `.so` plug-in is given (`struct etmem_engine *`, `struct
//! etmem_task *`...): numbers, not pointers. A handle names an entry of one table; the
//! accessor functions look it up there, so a stale, foreign or made-up handle finds
//! nothing and gets NULL or -1, never memory that was freed or belongs to something else.
//! Numbers are never reused.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// What a handle stands for, with what the accessors answer about it.
pub enum Subject {
    /// One `[engine]` or `[task]` group: its keys and values, in file order.
    Config(Vec<(CString, CString)>),
    /// A thirdparty engine: its name and its project's settings as text.
    Engine {
        /// `eng_name`.
        name: CString,
        /// The project's settings (`name`, `loop`...), as `etmem_project_get` gives them.
        project: Vec<(CString, CString)>,
    },
    /// A task of the engine `engine` (a handle number).
    Task {
        /// The task's name.
        name: CString,
        /// `pid` or `name`.
        kind: CString,
        /// The configured value.
        value: CString,
        /// `max_threads`.
        max_threads: i32,
        /// `swap_flag`: 1 yes, 0 no.
        swap_flag: i32,
        /// The engine's handle number.
        engine: usize,
        /// The pids of its recorded processes, asked when the plug-in asks.
        pids: Box<dyn Fn() -> Vec<u32> + Send + Sync>,
    },
    /// A recorded process of the task `task` (a handle number).
    Pid {
        /// Its pid.
        pid: u32,
        /// The task's handle number.
        task: usize,
    },
    /// The output of one engine command, as the plug-in writes it.
    Answer(Mutex<Vec<u8>>),
}

/// A table entry: the object, and the plug-in's own pointer for it.
pub struct Entry {
    /// What the handle stands for.
    pub object: Subject,
    /// The plug-in's pointer (`etmem_*_set_data`), as an address.
    pub data: AtomicUsize,
}

/// Every live handle.
static TABLE: RwLock<Option<HashMap<usize, Arc<Entry>>>> = RwLock::new(None);
/// The next handle number: odd numbers from a high base, so that a handle looks like no
/// small integer or aligned pointer a plug-in might confuse it with.
static NEXT: AtomicUsize = AtomicUsize::new(0x7e7e_0001);

/// The entry of handle number `id`, if it lives.
pub fn get(id: usize) -> Option<Arc<Entry>> {
    let table = TABLE.read().unwrap_or_else(|p| p.into_inner());
    table.as_ref()?.get(&id).cloned()
}

/// A handle, live until dropped.
pub struct Handle {
    id: usize,
}

impl Handle {
    /// A new handle for `object`.
    pub fn new(object: Subject) -> Handle {
        let id = NEXT.fetch_add(2, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            object,
            data: AtomicUsize::new(0),
        });
        let mut table = TABLE.write().unwrap_or_else(|p| p.into_inner());
        table.get_or_insert_with(HashMap::new).insert(id, entry);
        Handle { id }
    }

    /// The handle's number, as the plug-in sees it (a pointer).
    pub fn id(&self) -> usize {
        self.id
    }

    /// The bytes written to an answer handle so far (empty for another kind).
    pub fn answer(&self) -> Vec<u8> {
        match get(self.id).as_deref() {
            Some(Entry {
                object: Subject::Answer(text),
                ..
            }) => crate::error::lock(text).clone(),
            _ => Vec::new(),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let gone = {
            let mut table = TABLE.write().unwrap_or_else(|p| p.into_inner());
            table.as_mut().and_then(|t| t.remove(&self.id))
        };
        // Dropped outside the lock: a task's pid closure may take locks of its own.
        drop(gone);
    }
}

/// `text` as a C string, NUL bytes left out (a config value cannot hold one anyway).
pub fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("no NUL left")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_live_until_dropped_and_are_never_reused() {
        let a = Handle::new(Subject::Answer(Mutex::new(b"x".to_vec())));
        let id = a.id();
        assert!(get(id).is_some());
        assert_eq!(a.answer(), b"x");
        drop(a);
        assert!(get(id).is_none());
        let b = Handle::new(Subject::Pid { pid: 1, task: 0 });
        assert_ne!(b.id(), id);
        assert!(b.answer().is_empty());
        assert!(get(0).is_none() && get(usize::MAX).is_none());
    }
}
