//! Name the library as upstream's CMake build does, so programs linked with
//! `-letmemd_scan` record `libetmemd_scan.so` wherever it was found.

fn main() {
    // The output depends on nothing but this file: without the line, cargo reruns the
    // script (and relinks the library) whenever any file of the crate looks newer, as
    // every file of a copied tree does (packaging/cargo-build).
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libetmemd_scan.so");
}
