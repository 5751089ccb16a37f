//! `etmem`: one binary, four programs. See `applets` for how the program is chosen.

#![deny(unsafe_code)]

fn main() {
    std::process::exit(etmem::applets::main(std::env::args_os().collect()));
}
