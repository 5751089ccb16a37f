//! The client/daemon protocol, byte-compatible with upstream etmem.
