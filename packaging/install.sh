#!/bin/sh
# Install etmem into DESTDIR (default: /) the way the packages lay it out, for rpm %install
# and debian/rules alike; this is the one place that knows the layout. (An initramfs takes
# the binary alone: packaging/initramfs/mkinitramfs.)
#   /usr/bin/etmem (mode 0500, as upstream) and the links etmemd, etmem-scan, etmem-swap;
#   /etc/etmem/ (mode 0750): the conf/*.yaml examples (mode 0600, as the daemon requires)
#     and etmemd.env, the unit's settings;
#   the systemd unit, in UNITDIR (default /usr/lib/systemd/system);
#   every man/*.N page in its section; the bash completion for all four programs;
#   the example policy process /usr/libexec/etmem/swap_idle_policy.sh (mode 0700);
#   with --scanlib: libetmemd_scan.so in LIBDIR (default /usr/lib) and the C headers.
# Usage: packaging/install.sh [--unitdir DIR] [--libdir DIR] [--scanlib FILE] BINARY [DESTDIR]
set -eu
usage="usage: install.sh [--unitdir DIR] [--libdir DIR] [--scanlib FILE] BINARY [DESTDIR]"
unitdir=/usr/lib/systemd/system
libdir=/usr/lib
scanlib=
while [ $# -gt 0 ]; do
  case $1 in
    --unitdir) unitdir=${2:?$usage}; shift 2 ;;
    --libdir) libdir=${2:?$usage}; shift 2 ;;
    --scanlib) scanlib=${2:?$usage}; shift 2 ;;
    -*) echo "install.sh: unknown option $1" >&2; echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
bin=${1:?$usage}
dest=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)

install -D -m 0500 "$bin" "$dest/usr/bin/etmem"
for applet in etmemd etmem-scan etmem-swap; do
  ln -sf etmem "$dest/usr/bin/$applet"
done

install -d -m 0750 "$dest/etc/etmem"
for f in "$here"/conf/*.yaml; do
  install -m 0600 "$f" "$dest/etc/etmem/"
done
install -m 0644 "$here/packaging/etmemd.env" "$dest/etc/etmem/etmemd.env"
install -D -m 0644 "$here/packaging/etmemd.service" "$dest$unitdir/etmemd.service"

for page in "$here"/man/*.[1-9]; do
  section=${page##*.}
  install -D -m 0644 "$page" "$dest/usr/share/man/man$section/${page##*/}"
done

completions=$dest/usr/share/bash-completion/completions
install -D -m 0644 "$here/packaging/bash-completion/etmem" "$completions/etmem"
for applet in etmemd etmem-scan etmem-swap; do
  ln -sf etmem "$completions/$applet"
done

# A thirdparty engine runs a policy only when it is root's with mode 0500 or 0700.
install -D -m 0700 "$here/examples/swap_idle_policy.sh" "$dest/usr/libexec/etmem/swap_idle_policy.sh"

if [ -n "$scanlib" ]; then
  install -D -m 0755 "$scanlib" "$dest$libdir/libetmemd_scan.so"
  install -d -m 0755 "$dest/usr/include/etmem"
  install -m 0644 "$here"/include/etmem/*.h "$dest/usr/include/etmem/"
  # Upstream's header names, forwarding to etmem/scan.h (or saying what replaced them).
  install -m 0644 "$here"/include/*.h "$dest/usr/include/"
fi
