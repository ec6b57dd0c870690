#!/usr/bin/env bash
# Builds the Debian roots the Python tests profile from the host: trixie's
# python3.13 and sid's python3.14 (a process in a chroot is also the container
# case). Cached in /var/cache/bprof/chroots between runs on the same machine.
set -euo pipefail
dir=${BPROF_CHROOTS:-/var/cache/bprof/chroots}
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
mkdir -p "$dir"
for suite in trixie sid; do
  root=$dir/$suite
  if [ -x "$root/usr/bin/python3" ]; then
    echo "chroot $suite: cached ($("$(command -v chroot)" "$root" python3 --version))"
    continue
  fi
  rm -rf "$root.tmp"
  debootstrap --variant=minbase --include=python3 "$suite" "$root.tmp" http://deb.debian.org/debian >"$dir/$suite.log" 2>&1 \
    || { tail -20 "$dir/$suite.log"; exit 1; }
  mv "$root.tmp" "$root"
  echo "chroot $suite: built ($(chroot "$root" python3 --version))"
done
