/* Upstream etmem's plug-in header. Its structs and GLib types are not etmem (Rust)'s
 * plug-in interface: include <etmem/engine.h> and see docs/porting-plugins.md. */
#error "etmem (Rust) plug-ins use <etmem/engine.h>: see docs/porting-plugins.md"
