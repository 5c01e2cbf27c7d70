#!/bin/sh
# meson install script of release builds (meson.build): strips the installed binaries.
#   strip-installed.sh PATH...   PATH relative to the prefix (or absolute)
set -eu
for path in "$@"; do
    case "$path" in
    /*) file="${DESTDIR:-}$path" ;;
    *) file="$MESON_INSTALL_DESTDIR_PREFIX/$path" ;;
    esac
    if [ -n "${MESON_INSTALL_DRY_RUN:-}" ]; then
        echo "would strip $file"
    else
        ${STRIP:-strip} --strip-unneeded "$file"
    fi
done
