//! Name the library as upstream's CMake build does, so programs linked with
//! `-letmemd_scan` record `libetmemd_scan.so` wherever it was found.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libetmemd_scan.so");
}
