# shellcheck shell=bash disable=SC2034  # arrays are used by the scripts sourcing this
# Helpers shared by scripts/run.sh, scripts/test.sh and scripts/quality.sh. Source it; it
# changes directory to the repository root and defines the functions below.

# Packages needed to build the CLI and the daemon (meson.build, src/*/meson.build).
AE_BUILD_PACKAGES=(meson ninja-build gcc pkg-config libc6-dev zlib1g-dev libinih-dev
                   libmicrohttpd-dev libcjson-dev libsystemd-dev)
# Extra packages for `meson test`: cmocka (tests/unit), pytest (tests/integration), systemd
# for systemd-socket-activate / systemd-analyze used by the daemon tests, nginx for the
# cluster test (tests/integration/test_cluster.py), openssl for the self-signed certificate
# of the TLS test (tests/integration/test_security.py), curl for the README's examples
# (test_readme.py), procps for /bin/kill, the unit's ExecReload (systemd-analyze verify).
# groff-base and man-db render the man pages, binutils (readelf) looks for debug symbols in
# the installed binaries (test_install.py).
# chromium, with node and npm for playwright-core (tests/browser), draws the status page
# and the report (test_browser.py).
AE_TEST_PACKAGES=(libcmocka-dev python3 python3-pytest systemd curl nginx openssl procps
                  groff-base man-db binutils chromium time)

# Debian's own tools first (python3 with the python3-* packages apt installs, meson, gcc), even
# when a user-level python (pyenv, a virtualenv) comes earlier in PATH.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

AE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$AE_ROOT" || exit 1

ae_say() {
    printf '==> %s\n' "$*" >&2
}

ae_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ae_build_rev REV DIR TARGET: REV's sources (git archive, so no work tree is touched) built
# for release in DIR/build; prints the path of the built TARGET. For the bench scripts'
# --baseline.
ae_build_rev() {
    ae_say "building $1 for the baseline"
    mkdir -p "$2"
    git -C "$AE_ROOT" archive "$1" | tar -x -C "$2"
    (cd "$2" && meson setup build --buildtype=release >/dev/null &&
        meson compile -C build "$3" >/dev/null) || ae_die "cannot build $1"
    printf '%s\n' "$2/build/$3"
}

# ae_install PACKAGE...: install with apt-get whatever of PACKAGE... is not installed yet.
ae_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        ae_say "packages already installed: $*"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        ae_die "missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    fi
    ae_say "installing with apt-get: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || return 1
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ae_install_node: node and npm for the browser tests; Debian's unless some are installed
# already (NodeSource's nodejs carries its own npm and conflicts with Debian's).
ae_install_node() {
    if command -v node >/dev/null && command -v npm >/dev/null; then
        ae_say "node $(node --version) and npm $(npm --version) already installed"
        return 0
    fi
    ae_install nodejs npm
}
# ae_setup BUILDDIR MESON-OPTION...: configure BUILDDIR with these options, whether it
# is new or was configured before (then reconfigure; wipe it if that fails).
ae_setup() {
    local dir="$1"
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        ae_say "reconfiguring $dir: $*"
        meson setup --reconfigure "$dir" "$@" ||
            meson setup --wipe "$dir" "$@"
    else
        ae_say "configuring $dir: $*"
        meson setup "$dir" "$@"
    fi
}

# ae_build BUILDDIR MESON-OPTION...: configure and compile.
ae_build() {
    local dir="$1"
    ae_setup "$@" || return 1
    ae_say "building $dir"
    meson compile -C "$dir"
}
