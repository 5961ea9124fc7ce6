#!/usr/bin/env bash
# Makes sure the browser test (tests/browser/) has a browser: Debian's Chromium.
#
#   tools/browser_deps.sh [/path/to/chromium]      (called by `make browser` and `make test`)
#
# Playwright drives the *system* Chromium; `playwright install` (a browser download from a
# CDN) is never used. When Chromium is missing and we are root with apt-get (a CI container),
# it is installed with `apt-get install -y chromium`, together with a CJK font so that the
# Chinese terms of the glossary render in the screenshots. Otherwise this prints what to do
# and exits 0: the browser test then skips with the same message (under CI=true it fails).
set -u
CHROMIUM="${1:-/usr/bin/chromium}"

missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
if ! { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; }; then
    missing+=(fonts-wqy-zenhei)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "==> [browser] using $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -n1))"
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> [browser] installing ${missing[*]} with apt-get"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
        [ -x "$CHROMIUM" ] && echo "==> [browser] using $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -n1))"
        exit 0
    fi
    echo "==> [browser] apt-get could not install ${missing[*]}"
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "==> [browser] Chromium not found at $CHROMIUM. To run the browser test, install it:"
    echo "      sudo apt-get install chromium        (Debian; Ubuntu: sudo snap install chromium)"
    echo "    or name another Chromium/Chrome binary: make test CHROMIUM=/path/to/chromium"
    echo "    Without it the browser test is skipped (with CI=true it fails)."
else
    echo "==> [browser] using $CHROMIUM (no CJK font found: Chinese terms may show as boxes in screenshots)"
fi
exit 0
