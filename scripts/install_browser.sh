#!/usr/bin/env bash
# Installs Debian's Chromium for the admin browser tests (tests/browser/), if it is missing.
# Idempotent, non-interactive and quiet. Playwright's own browser download does not work on
# these machines; the tests drive /usr/bin/chromium through Playwright's Python package.
# Never fails the caller: where Chromium cannot be installed it says so and exits 0, and the
# browser tests then skip with that reason.
set -uo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install_browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get here; install Chromium by hand (browser tests will be skipped)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_browser: not root and no password-less sudo; cannot install chromium (browser tests will be skipped)"
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if $SUDO apt-get update -qq >"$log" 2>&1 \
    && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >>"$log" 2>&1; then
    echo "install_browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
    echo "install_browser: apt-get could not install chromium (browser tests will be skipped); last lines:"
    tail -n 5 "$log" | sed 's/^/  /'
fi
rm -f "$log"
exit 0
