#!/usr/bin/env bash
# Sets up the profilers `go run ./bench` compares bprof with. Idempotent: run
# it again and it only checks. Needs root and Debian's package archive.
#
# On the host (Debian bookworm):
#   linux-perf    perf record -g
#   bpftrace      0.17, profile:hz:99 with ustack / kstack
#   libbpf-tools  offcputime (bookworm's build has no `profile`)
#   time          GNU time, which the bench runs each tool under for its own peak RSS
# In the trixie chroot that .ci/setup-chroots.sh builds (python3.13 there):
#   austin        3.7, the only peer that names Python frames
#   libbpf-tools  trixie's build, which has `profile` (installed as profile-libbpf)
#
# The chroot needs /proc (austin lists and reads processes through it) and
# /sys (libbpf-tools reads the kernel's BTF and the online CPUs). The harness
# mounts both for its runs and unmounts them after; this script mounts them
# only around apt-get, whose maintainer scripts want /proc.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
here=$(cd "$(dirname "$0")" && pwd)
root=${BPROF_CHROOTS:-/var/cache/bprof/chroots}/trixie

host_pkgs=(linux-perf bpftrace libbpf-tools time gcc util-linux)
missing=()
for p in "${host_pkgs[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "host: $(perf --version), bpftrace $(bpftrace --version | awk '{print $2}'), offcputime $(command -v offcputime)"

# The same chroot the Python tests use; building it also builds sid (once).
[ -x "$root/usr/bin/python3" ] || bash "$here/../.ci/setup-chroots.sh"

if ! [ -x "$root/usr/bin/austin" ] || ! [ -x "$root/usr/sbin/profile-libbpf" ]; then
  mounted=
  if ! mountpoint -q "$root/proc"; then
    mount -t proc proc "$root/proc"
    mounted=1
  fi
  trap 'if [ -n "$mounted" ]; then umount "$root/proc"; fi' EXIT
  # apt complains that the chroot has no /dev/pts; it installs all the same.
  log=$root.peers.log
  { chroot "$root" apt-get update -qq && chroot "$root" apt-get install -y -qq austin libbpf-tools; } >"$log" 2>&1 \
    || { tail -20 "$log"; exit 1; }
fi
echo "trixie chroot: $(chroot "$root" austin --version 2>&1 | head -1), $(chroot "$root" sh -c 'command -v profile-libbpf')"
