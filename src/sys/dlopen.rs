//! Shared objects loaded into etmemd (a thirdparty engine's `.so`, spec §8.2): `dlopen`
//! with `RTLD_NOW | RTLD_LOCAL`, `dlsym`, and `dlclose` when the last user is gone.
//!
//! A library is loaded from an open file, through `/proc/self/fd/N`, never by its path:
//! what is loaded is the file that was opened and checked, whatever happens to the path.
//! The dynamic loader knows a library by the name it was loaded under, so that name must
//! not come to mean another file while the library is mapped: the descriptor is held
//! until `dlclose` really unmapped it, and kept open for good if it did not (a library
//! may refuse to unload), so its number is never reused for another file.

use std::ffi::{c_void, CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// A loaded shared object.
#[derive(Debug)]
pub struct Library {
    handle: NonNull<c_void>,
    /// `/proc/self/fd/N`: the name the loader knows it by.
    name: CString,
    /// The file it was loaded from (`None` once deliberately kept open for good).
    fd: Option<OwnedFd>,
}

// SAFETY: a dlopen handle may be used from any thread (dlsym and dlclose are
// thread-safe); the other fields are plain data.
unsafe impl Send for Library {}
// SAFETY: as above: nothing in the handle is mutated through a shared reference.
unsafe impl Sync for Library {}

/// The loader's last error message (`dlerror`), for this thread.
fn last_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl*
    // call of this thread, copied out at once.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: a NUL-terminated string from dlerror (see above).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Library {
    /// Load the shared object open at `fd` (`RTLD_NOW | RTLD_LOCAL`: every symbol bound
    /// now, none of them visible to other libraries). Its constructors run. The error
    /// is the loader's message (a missing dependency, an undefined symbol...), naming
    /// the file `shown` rather than its `/proc/self/fd` name.
    pub fn load(fd: OwnedFd, shown: &str) -> Result<Library> {
        let name =
            CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number");
        // SAFETY: `name` is a NUL-terminated path; dlopen has no other precondition (the
        // library's code that runs is what the caller chose to trust).
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        match NonNull::new(handle) {
            Some(handle) => Ok(Library {
                handle,
                name,
                fd: Some(fd),
            }),
            None => Err(Error::invalid(
                last_error().replace(name.to_str().unwrap_or_default(), shown),
            )),
        }
    }

    /// The address of the symbol `name` (a function or data object of the library or of
    /// what it links), or an error naming it.
    pub fn symbol(&self, name: &str) -> Result<NonNull<c_void>> {
        let c = CString::new(name).map_err(|_| Error::invalid("a symbol name holds a NUL"))?;
        // SAFETY: a live handle of ours and a NUL-terminated name.
        let p = unsafe { libc::dlsym(self.handle.as_ptr(), c.as_ptr()) };
        NonNull::new(p).ok_or_else(|| Error::invalid(format!("the library has no symbol {name}")))
    }

    /// The data object `name` of at least `size` bytes: [`Library::symbol`], refused
    /// when the loader says it is a function or a smaller object (glibc tells; other C
    /// libraries are trusted on the name alone).
    pub fn object(&self, name: &str, size: usize) -> Result<NonNull<c_void>> {
        let p = self.symbol(name)?;
        match symbol_entry(p) {
            Some((kind, _)) if kind != STT_OBJECT => Err(Error::invalid(format!(
                "{name} is not a variable (a function?)"
            ))),
            Some((_, n)) if n < size as u64 => Err(Error::invalid(format!(
                "{name} has {n} bytes, not the {size} of what it must be"
            ))),
            _ => Ok(p),
        }
    }

    /// True while the loader still has a library under this library's name mapped (a
    /// probe that takes no reference).
    fn still_mapped(name: &CStr) -> bool {
        // SAFETY: RTLD_NOLOAD loads nothing: it returns a handle (a reference, given back
        // at once) only for a library already loaded under that name.
        unsafe {
            let h = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            if h.is_null() {
                return false;
            }
            libc::dlclose(h);
        }
        true
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once; nothing of the library is used after this (the
        // callers drop every pointer into it first).
        unsafe { libc::dlclose(self.handle.as_ptr()) };
        if Library::still_mapped(&self.name) {
            // Another engine holds the same file, or the library cannot be unloaded:
            // keep its name meaning it (the descriptor stays open).
            std::mem::forget(self.fd.take());
        }
    }
}

/// The ELF symbol type of a data object.
const STT_OBJECT: u8 = 1;

/// The ELF type and size of the symbol at `p`, as the loader knows it.
#[cfg(target_env = "gnu")]
fn symbol_entry(p: NonNull<c_void>) -> Option<(u8, u64)> {
    /// `RTLD_DL_SYMENT` of glibc's `<dlfcn.h>`: `dladdr1` gives the symbol's entry.
    const RTLD_DL_SYMENT: libc::c_int = 1;
    // SAFETY: all-zero is a valid Dl_info (NULL pointers and zeros), filled in below.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut sym: *mut c_void = std::ptr::null_mut();
    // SAFETY: dladdr1 only reads the loader's tables; it writes `info` and `sym`.
    let found = unsafe { libc::dladdr1(p.as_ptr(), &mut info, &mut sym, RTLD_DL_SYMENT) };
    if found == 0 || sym.is_null() {
        return None;
    }
    // SAFETY: with RTLD_DL_SYMENT, `sym` points to the symbol's entry in the library's
    // dynamic symbol table, which stays mapped while the library is.
    let sym = unsafe { &*(sym as *const libc::Elf64_Sym) };
    Some((sym.st_info & 0xf, sym.st_size))
}

/// Without glibc's `dladdr1` the loader says nothing about a symbol.
#[cfg(not(target_env = "gnu"))]
fn symbol_entry(_p: NonNull<c_void>) -> Option<(u8, u64)> {
    None
}
