#!/bin/sh
# Install etmem into DESTDIR (default: /) the way the upstream packages lay it out, for
# rpm %install, debian/rules and initramfs hooks alike:
#   /usr/bin/etmem (mode 0500) and the links etmemd, etmem-scan, etmem-swap;
#   /etc/etmem/*.yaml (mode 0600, directory 0750); the systemd unit; the man pages; the
#   example policy process /usr/libexec/etmem/swap_idle_policy.sh (mode 0700).
# Usage: packaging/install.sh BINARY [DESTDIR]
set -eu
bin=${1:?usage: install.sh BINARY [DESTDIR]}
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
install -D -m 0644 "$here/packaging/etmemd.service" "$dest/usr/lib/systemd/system/etmemd.service"
install -D -m 0644 "$here/man/etmem.8" "$dest/usr/share/man/man8/etmem.8"
install -D -m 0644 "$here/man/etmem-policy.7" "$dest/usr/share/man/man7/etmem-policy.7"
# A thirdparty engine runs a policy only when it is root's with mode 0500 or 0700.
install -D -m 0700 "$here/examples/swap_idle_policy.sh" "$dest/usr/libexec/etmem/swap_idle_policy.sh"
for page in etmemd etmem-scan etmem-swap; do
  ln -sf etmem.8 "$dest/usr/share/man/man8/$page.8"
done
