//! A loaded `.so` plug-in: its `struct etmem_engine_ops` found, checked and copied, its
//! `etmem_host` pointed at [`HOST`], and its nine callbacks behind safe calls that take
//! [`Handle`]s. A NULL callback is `None`; the calls of one plug-in are serialised.

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use super::handles::Handle;
use super::host::{EtmemHost, HOST};
use super::ABI_VERSION;
use crate::error::{lock, Error};
use crate::sys::dlopen::Library;

type Config = *const c_void;
type Obj = *mut c_void;

/// `struct etmem_engine_ops`, field for field.
#[repr(C)]
#[derive(Clone, Copy)]
struct EngineOps {
    abi_version: c_uint,
    fill_eng_params: Option<unsafe extern "C" fn(Config, Obj) -> c_int>,
    clear_eng_params: Option<unsafe extern "C" fn(Obj)>,
    fill_task_params: Option<unsafe extern "C" fn(Config, Obj) -> c_int>,
    clear_task_params: Option<unsafe extern "C" fn(Obj)>,
    start_task: Option<unsafe extern "C" fn(Obj, Obj) -> c_int>,
    stop_task: Option<unsafe extern "C" fn(Obj, Obj)>,
    alloc_pid_params: Option<unsafe extern "C" fn(Obj, Obj) -> c_int>,
    free_pid_params: Option<unsafe extern "C" fn(Obj, Obj)>,
    eng_mgt_func: Option<unsafe extern "C" fn(Obj, Obj, *const c_char, Obj) -> c_int>,
}

/// What a refusal to load a plug-in is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The library (`libname=`).
    Library,
    /// Its ops symbol (`ops_name=`).
    Symbol,
}

/// A loaded plug-in.
pub struct Plugin {
    ops: EngineOps,
    /// Held while a callback runs.
    calls: Mutex<()>,
    /// Last field: unloaded after everything else is dropped.
    _lib: Library,
}

/// The number a handle gives the plug-in, as its pointer type.
fn p(h: &Handle) -> Obj {
    h.id() as Obj
}

impl Plugin {
    /// Load the shared object open at `fd` (the file `shown`) and take its `ops_name`.
    /// Refused, saying why and whether the library or the symbol is to blame: a library
    /// the loader rejects, or one not built with `<etmem/engine.h>` (no `etmem_host`: an
    /// upstream plug-in); no such symbol, or one that is not a `struct etmem_engine_ops`
    /// of this ABI version.
    pub fn load(
        fd: OwnedFd,
        shown: &str,
        ops_name: &str,
    ) -> std::result::Result<Plugin, (Blame, Error)> {
        let lib = Library::load(fd, shown).map_err(|e| (Blame::Library, e))?;
        let host = lib
            .object("etmem_host", std::mem::size_of::<*const EtmemHost>())
            .map_err(|e| {
                let why = format!(
                    "{shown} was not built with <etmem/engine.h> ({}); an upstream etmem \
                     plug-in must be ported to it first (docs/porting-plugins.md)",
                    e.msg
                );
                (Blame::Library, Error::invalid(why))
            })?;
        let ops = lib
            .object(ops_name, std::mem::size_of::<EngineOps>())
            .map_err(|e| (Blame::Symbol, e))?;
        // SAFETY: a data object of the library at least as large as the field read.
        let abi = unsafe { ops.cast::<c_uint>().as_ptr().read_unaligned() };
        if abi != ABI_VERSION {
            return Err((
                Blame::Symbol,
                Error::invalid(format!(
                    "{ops_name} is no struct etmem_engine_ops of ABI version {ABI_VERSION} (its \
                 abi_version is {abi}): build the plug-in against this etmem's \
                 <etmem/engine.h> and make {ops_name} with ETMEM_ENGINE_OPS_INIT"
                )),
            ));
        }
        // SAFETY: a data object of the library, as large as the struct, which the header
        // defines as this layout (its ABI version says so). Each field is a function
        // pointer or NULL, which `Option<fn>` represents.
        let ops = unsafe { ops.cast::<EngineOps>().as_ptr().read_unaligned() };
        // SAFETY: `etmem_host` is the library's pointer-sized variable, defined by the
        // header for us to set before any callback runs.
        unsafe {
            host.cast::<*const EtmemHost>()
                .as_ptr()
                .write_unaligned(&HOST)
        };
        Ok(Plugin {
            ops,
            calls: Mutex::new(()),
            _lib: lib,
        })
    }

    /// Whether the plug-in has `start_task` (without it a project cannot start).
    pub fn can_start(&self) -> bool {
        self.ops.start_task.is_some()
    }

    /// Whether the plug-in has `eng_mgt_func` (a command handler).
    pub fn has_commands(&self) -> bool {
        self.ops.eng_mgt_func.is_some()
    }

    /// `fill_eng_params(config, eng)`: its result, `None` if the plug-in has none.
    pub fn fill_eng_params(&self, config: &Handle, eng: &Handle) -> Option<i32> {
        let f = self.ops.fill_eng_params?;
        let _one = lock(&self.calls);
        // SAFETY: a callback of a checked plug-in built against our header, given the
        // handles its signature names.
        Some(unsafe { f(p(config), p(eng)) })
    }

    /// `clear_eng_params(eng)`, if the plug-in has it.
    pub fn clear_eng_params(&self, eng: &Handle) {
        if let Some(f) = self.ops.clear_eng_params {
            let _one = lock(&self.calls);
            // SAFETY: as in `fill_eng_params`.
            unsafe { f(p(eng)) }
        }
    }

    /// `fill_task_params(config, tk)`: its result, `None` if the plug-in has none.
    pub fn fill_task_params(&self, config: &Handle, tk: &Handle) -> Option<i32> {
        let f = self.ops.fill_task_params?;
        let _one = lock(&self.calls);
        // SAFETY: as in `fill_eng_params`.
        Some(unsafe { f(p(config), p(tk)) })
    }

    /// `clear_task_params(tk)`, if the plug-in has it.
    pub fn clear_task_params(&self, tk: &Handle) {
        if let Some(f) = self.ops.clear_task_params {
            let _one = lock(&self.calls);
            // SAFETY: as in `fill_eng_params`.
            unsafe { f(p(tk)) }
        }
    }

    /// `start_task(eng, tk)`: its result, `None` if the plug-in has none.
    pub fn start_task(&self, eng: &Handle, tk: &Handle) -> Option<i32> {
        let f = self.ops.start_task?;
        let _one = lock(&self.calls);
        // SAFETY: as in `fill_eng_params`.
        Some(unsafe { f(p(eng), p(tk)) })
    }

    /// `stop_task(eng, tk)`, if the plug-in has it; false if it has none.
    pub fn stop_task(&self, eng: &Handle, tk: &Handle) -> bool {
        let Some(f) = self.ops.stop_task else {
            return false;
        };
        let _one = lock(&self.calls);
        // SAFETY: as in `fill_eng_params`.
        unsafe { f(p(eng), p(tk)) };
        true
    }

    /// `alloc_pid_params(eng, tpid)`: its result, `None` if the plug-in has none.
    pub fn alloc_pid_params(&self, eng: &Handle, tpid: &Handle) -> Option<i32> {
        let f = self.ops.alloc_pid_params?;
        let _one = lock(&self.calls);
        // SAFETY: as in `fill_eng_params`.
        Some(unsafe { f(p(eng), p(tpid)) })
    }

    /// `free_pid_params(eng, tpid)`, if the plug-in has it.
    pub fn free_pid_params(&self, eng: &Handle, tpid: &Handle) {
        if let Some(f) = self.ops.free_pid_params {
            let _one = lock(&self.calls);
            // SAFETY: as in `fill_eng_params`.
            unsafe { f(p(eng), p(tpid)) }
        }
    }

    /// `eng_mgt_func(eng, tk or NULL, cmd, answer)`: its result, `None` if the plug-in
    /// has none.
    pub fn eng_mgt_func(
        &self,
        eng: &Handle,
        tk: Option<&Handle>,
        cmd: &str,
        answer: &Handle,
    ) -> Option<i32> {
        let f = self.ops.eng_mgt_func?;
        let cmd = CString::new(cmd.replace('\0', "")).expect("no NUL left");
        let tk = tk.map_or(std::ptr::null_mut(), p);
        let _one = lock(&self.calls);
        // SAFETY: as in `fill_eng_params`; `cmd` outlives the call.
        Some(unsafe { f(p(eng), tk, cmd.as_ptr(), p(answer)) })
    }
}
