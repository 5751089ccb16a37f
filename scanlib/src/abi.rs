//! The C layouts of `include/etmem/scan.h` (upstream's LP64 structs, in declaration
//! order) and their conversions to and from etmem's types, which need no raw pointer.

use std::mem::{offset_of, size_of};
use std::os::raw::{c_char, c_int, c_uint};

use etmem::types::{PageSize, Range, Vma};

/// Bytes of `struct vma`'s `path`, NUL included.
const PATH_LEN: usize = 256;
/// Bytes of `struct vma`'s `major` and `minor`, NUL included.
const DEV_LEN: usize = 8;

/// `struct vma`: one mapping.
#[repr(C)]
pub struct CVma {
    pub start: u64,
    pub end: u64,
    /// read, write, exec, may_share.
    pub stat: [bool; 4],
    pub offset: u64,
    pub inode: u64,
    pub path: [c_char; PATH_LEN],
    pub major: [c_char; DEV_LEN],
    pub minor: [c_char; DEV_LEN],
    pub next: *mut CVma,
}

/// `struct vmas`: a list of mappings and its length.
#[repr(C)]
pub struct CVmas {
    pub vma_cnt: u64,
    pub vma_list: *mut CVma,
}

/// `struct page_refs`: one page of an address-sorted list.
#[repr(C)]
pub struct CPageRef {
    pub addr: u64,
    pub count: c_int,
    /// `enum page_type`.
    pub kind: c_uint,
    pub next: *mut CPageRef,
}

// The offsets a C compiler gives the header's structs on LP64 (the C test checks the
// same numbers with _Static_assert).
const _: () = assert!(size_of::<CVma>() == 320);
const _: () = assert!(offset_of!(CVma, stat) == 16 && offset_of!(CVma, offset) == 24);
const _: () = assert!(offset_of!(CVma, path) == 40 && offset_of!(CVma, major) == 296);
const _: () = assert!(offset_of!(CVma, minor) == 304 && offset_of!(CVma, next) == 312);
const _: () = assert!(size_of::<CVmas>() == 16 && offset_of!(CVmas, vma_list) == 8);
const _: () = assert!(size_of::<CPageRef>() == 24 && offset_of!(CPageRef, kind) == 12);
const _: () = assert!(offset_of!(CPageRef, next) == 16);

/// `enum page_type` of a size class.
pub fn page_type(size: PageSize) -> c_uint {
    match size {
        PageSize::Base => 0,
        PageSize::Pmd => 1,
        PageSize::Pud => 2,
    }
}

/// `text` as a NUL-terminated C array, or all NULs when it does not fit (upstream leaves
/// an over-long path empty rather than cut it).
fn c_array<const N: usize>(text: &str) -> [c_char; N] {
    let mut out = [0; N];
    if text.len() < N && !text.contains('\0') {
        for (o, b) in out.iter_mut().zip(text.bytes()) {
            *o = b as c_char;
        }
    }
    out
}

/// The text of a C array up to its first NUL (or its end).
fn from_c_array(a: &[c_char]) -> String {
    let bytes: Vec<u8> = a.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl CVma {
    /// The C form of `v`, not linked.
    pub fn from_vma(v: &Vma) -> CVma {
        CVma {
            start: v.range.start,
            end: v.range.end,
            stat: [v.read, v.write, v.exec, v.shared],
            offset: v.offset,
            inode: v.inode,
            path: c_array(&v.path),
            major: c_array(&format!("{:02x}", v.major)),
            minor: c_array(&format!("{:02x}", v.minor)),
            next: std::ptr::null_mut(),
        }
    }

    /// The mapping this describes (a device number that is not hex reads as 0: tracking
    /// does not use it).
    pub fn to_vma(&self) -> Vma {
        let dev = |a: &[c_char]| u32::from_str_radix(&from_c_array(a), 16).unwrap_or(0);
        Vma {
            range: Range::new(self.start, self.end),
            read: self.stat[0],
            write: self.stat[1],
            exec: self.stat[2],
            shared: self.stat[3],
            offset: self.offset,
            major: dev(&self.major),
            minor: dev(&self.minor),
            inode: self.inode,
            path: from_c_array(&self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmas_round_trip() {
        let v =
            etmem::sys::maps::parse_line("7f00-9f00 r-xs 1000 fd:1a 42 /usr/lib/x y.so").unwrap();
        let c = CVma::from_vma(&v);
        assert_eq!(from_c_array(&c.major), "fd");
        assert_eq!(from_c_array(&c.minor), "1a");
        assert_eq!(from_c_array(&c.path), "/usr/lib/x y.so");
        assert_eq!(c.stat, [true, false, true, true]);
        assert_eq!(c.to_vma(), v);
        let long = "/".repeat(PATH_LEN);
        assert_eq!(from_c_array(&c_array::<PATH_LEN>(&long)), "");
    }
}
