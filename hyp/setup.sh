#!/usr/bin/env bash
# Idempotent installation of what hyp/run needs on a fresh machine: QEMU from
# bookworm-backports, the arm64 kernel and busybox packages (downloaded and
# extracted into a cache, never installed), and the Rust target.
set -euo pipefail
CACHE=${HYP_CACHE:-/var/tmp/vsmmu-hyp}
KERNEL=${1:-6.1}
mkdir -p "$CACHE"

apt_ready() {
    local changed=0
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        cat > /etc/apt/sources.list.d/vsmmu-hyp-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        changed=1
    fi
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        changed=1
    fi
    if [ "$changed" = 1 ] || [ ! -e "$CACHE/.apt-updated" ]; then
        apt-get update -qq
        touch "$CACHE/.apt-updated"
    fi
}

need_qemu() {
    if ! command -v qemu-system-aarch64 >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
            qemu-system-arm >/dev/null
    fi
    for tool in cpio gzip xz; do
        command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    done
}

# The kernel package name for the requested version: 6.1 from bookworm, 6.12
# from bookworm-backports (the ABI moves with security updates).
kernel_package() {
    if [ "$KERNEL" = 6.1 ]; then
        apt-cache depends linux-image-arm64:arm64 2>/dev/null \
            | sed -n 's/.*Depends: \(linux-image-6\.1[^:]*-arm64\)\(:arm64\)\?$/\1-unsigned/p' | head -n1
    else
        # The generic flavour (not -rt-, not 16k pages).
        apt-cache search --names-only '^linux-image-6\.12\.[0-9.]+\+deb12-arm64-unsigned$' 2>/dev/null \
            | awk '{print $1}' | sort -V | tail -n1
    fi
}

need_debs() {
    local dir="$CACHE/$KERNEL"
    local pkg
    pkg=$(kernel_package)
    [ -n "$pkg" ] || { echo "setup: no kernel package for $KERNEL" >&2; exit 1; }
    if [ "$(cat "$dir/.done" 2>/dev/null)" = "$pkg" ]; then return; fi
    rm -rf "$dir" && mkdir -p "$dir/deb" "$dir/root"
    (cd "$dir/deb" && apt-get download -qq "$pkg:arm64" busybox-static:arm64)
    for deb in "$dir"/deb/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
    echo "$pkg" > "$dir/.done"
}

need_rust() {
    rustup target list --installed | grep -qx aarch64-unknown-none \
        || rustup target add aarch64-unknown-none
}

apt_ready
need_qemu
need_debs
need_rust
