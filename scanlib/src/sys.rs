//! The exported C functions of `include/etmem/scan.h`. Every raw pointer of the library
//! is read, written, allocated (`calloc`, so that lists a C caller built can be freed
//! here and ours with `free`) and freed in this file, and each function catches panics,
//! so that none unwinds into C.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use etmem::track::export::{get_vmas, PageRef};
use etmem::types::Vma;

use crate::abi::{page_type, CPageRef, CVma, CVmas};
use crate::{checks, sessions};

/// More mappings than a list given to `etmemd_get_page_refs` may hold (the kernel's
/// default `vm.max_map_count` is 65530).
const MAX_VMAS: u64 = 1 << 24;

/// `f()`, or `fallback` if it panicked.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The C string at `p`, `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the result.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: not NULL, and the caller vouches for the string.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/// A zeroed `T` from `calloc`, NULL when memory is short.
fn calloc<T>() -> *mut T {
    // SAFETY: calloc has no preconditions; the result is checked by every caller.
    unsafe { libc::calloc(1, std::mem::size_of::<T>()) as *mut T }
}

/// Start the library (`etmemd_scan_init`): 0, or -1 when already started.
#[no_mangle]
pub extern "C" fn etmemd_scan_init() -> c_int {
    guarded(-1, || if sessions::init() { 0 } else { -1 })
}

/// Stop the library (`etmemd_scan_exit`), forgetting every process's tracking.
#[no_mangle]
pub extern "C" fn etmemd_scan_exit() {
    guarded((), sessions::exit)
}

/// The mappings of a process (`etmemd_get_vmas`), or NULL.
///
/// # Safety
/// `pid` is NULL or a C string; when `vmflags_num` > 0, `vmflags_array` is NULL or holds
/// that many pointers, each NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn etmemd_get_vmas(
    pid: *const c_char,
    vmflags_array: *const *const c_char,
    vmflags_num: c_int,
    is_anon_only: bool,
) -> *mut CVmas {
    guarded(ptr::null_mut(), || {
        // SAFETY: the caller's promise on `pid`.
        let pid = unsafe { c_str(pid) }.and_then(|s| checks::pid(s.to_bytes()));
        let Some(pid) = pid else {
            return ptr::null_mut();
        };
        let Ok(n) = usize::try_from(vmflags_num) else {
            return ptr::null_mut();
        };
        if n > 0 && vmflags_array.is_null() {
            return ptr::null_mut();
        }
        let mut flags = Vec::new();
        for i in 0..n {
            // SAFETY: the array holds `n` pointers, each NULL or a C string.
            let flag = unsafe { c_str(*vmflags_array.add(i)) };
            match flag.map(CStr::to_str) {
                Some(Ok(f)) => flags.push(f),
                _ => return ptr::null_mut(),
            }
        }
        match get_vmas(pid, &flags, is_anon_only) {
            Ok(vmas) => new_vmas(&vmas),
            Err(_) => ptr::null_mut(),
        }
    })
}

/// A `struct vmas` listing `vmas` in order, or NULL when memory is short.
fn new_vmas(vmas: &[Vma]) -> *mut CVmas {
    let out = calloc::<CVmas>();
    if out.is_null() {
        return out;
    }
    // SAFETY: `out` is a zeroed CVmas of ours; each node is a fresh allocation of ours
    // written before it is linked, and `tail` always points at the last link field.
    unsafe {
        let mut tail = ptr::addr_of_mut!((*out).vma_list);
        for v in vmas {
            let node = calloc::<CVma>();
            if node.is_null() {
                etmemd_free_vmas(out);
                return ptr::null_mut();
            }
            node.write(CVma::from_vma(v));
            *tail = node;
            tail = ptr::addr_of_mut!((*node).next);
            (*out).vma_cnt += 1;
        }
    }
    out
}

/// Free a `struct vmas` and its list (`etmemd_free_vmas`); NULL is fine.
///
/// # Safety
/// `vmas` is NULL or a `struct vmas` from `etmemd_get_vmas` or `calloc`, whose list nodes
/// come from either and end with NULL; none is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn etmemd_free_vmas(vmas: *mut CVmas) {
    guarded((), || {
        if vmas.is_null() {
            return;
        }
        // SAFETY: the caller's promise: malloc'd nodes of a NULL-terminated list.
        unsafe {
            let mut p = (*vmas).vma_list;
            while !p.is_null() {
                let next = (*p).next;
                libc::free(p.cast());
                p = next;
            }
            libc::free(vmas.cast());
        }
    })
}

/// The first `vma_cnt` mappings of a caller's list, `None` when it is shorter or
/// implausibly long.
///
/// # Safety
/// `vmas` points to a `struct vmas` whose list nodes are valid up to NULL or `vma_cnt`.
unsafe fn read_vmas(vmas: *const CVmas) -> Option<Vec<Vma>> {
    // SAFETY: the caller's promise.
    let (n, mut p) = unsafe { ((*vmas).vma_cnt, (*vmas).vma_list) };
    if n > MAX_VMAS {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..n {
        if p.is_null() {
            return None;
        }
        // SAFETY: a node of the caller's list.
        unsafe {
            out.push((*p).to_vma());
            p = (*p).next;
        }
    }
    Some(out)
}

/// One pass merged into `*page_refs` (`etmemd_get_page_refs`): 0 or -1.
///
/// # Safety
/// `vmas` is NULL or a valid `struct vmas`; `pid` NULL or a C string; `page_refs` NULL or
/// points to NULL or to an address-sorted list of `calloc`'d nodes ending with NULL.
#[no_mangle]
pub unsafe extern "C" fn etmemd_get_page_refs(
    vmas: *const CVmas,
    pid: *const c_char,
    page_refs: *mut *mut CPageRef,
    flags: c_int,
) -> c_int {
    guarded(-1, || {
        if !sessions::started() || vmas.is_null() || page_refs.is_null() {
            return -1;
        }
        // SAFETY: the caller's promise on `pid`.
        let pid = unsafe { c_str(pid) }.and_then(|s| checks::pid(s.to_bytes()));
        // SAFETY: `vmas` is not NULL; the caller's promise on its list.
        let list = unsafe { read_vmas(vmas) }.and_then(checks::mappings);
        let (Some(pid), Some(list)) = (pid, list) else {
            return -1;
        };
        // SAFETY: `page_refs` is not NULL.
        let fresh = unsafe { (*page_refs).is_null() };
        // The flags are bits; a negative int is their two's complement.
        let flags = flags as u32;
        // SAFETY: the caller's promise on the list at `page_refs`.
        let merged = sessions::pass(pid, &list, fresh, flags, |pages| unsafe {
            merge(page_refs, pages)
        });
        if merged == Some(true) {
            0
        } else {
            -1
        }
    })
}

/// Merge `pages` (ascending) into the sorted list at `head`: a known page's count grows
/// by its weight, a new one is inserted in order. False when memory ran short (the
/// pages merged before stay).
///
/// # Safety
/// `head` points to NULL or to a list of `calloc`'d nodes ending with NULL.
unsafe fn merge(head: *mut *mut CPageRef, pages: &mut dyn Iterator<Item = PageRef>) -> bool {
    let mut link = head;
    for p in pages {
        let weight = i32::try_from(p.count).unwrap_or(i32::MAX);
        // SAFETY: `link` is the caller's head or the `next` field of a node of the list,
        // and every node it reaches is one of the list's or one inserted here.
        unsafe {
            while !(*link).is_null() && (**link).addr < p.addr {
                link = ptr::addr_of_mut!((**link).next);
            }
            if !(*link).is_null() && (**link).addr == p.addr {
                (**link).count = (**link).count.saturating_add(weight);
            } else {
                let node = calloc::<CPageRef>();
                if node.is_null() {
                    return false;
                }
                node.write(CPageRef {
                    addr: p.addr,
                    count: weight,
                    kind: page_type(p.size),
                    next: *link,
                });
                *link = node;
            }
            link = ptr::addr_of_mut!((**link).next);
        }
    }
    true
}

/// Free a list of pages (`etmemd_free_page_refs`); NULL is fine.
///
/// # Safety
/// `page_refs` is NULL or a list of `calloc`'d nodes ending with NULL, not used after.
#[no_mangle]
pub unsafe extern "C" fn etmemd_free_page_refs(page_refs: *mut CPageRef) {
    guarded((), || {
        let mut p = page_refs;
        while !p.is_null() {
            // SAFETY: a node of the caller's list, freed once.
            unsafe {
                let next = (*p).next;
                libc::free(p.cast());
                p = next;
            }
        }
    })
}
