#!/usr/bin/env bash
# Install Debian's headless Chromium (the validation report's browser test) when it is missing
# and this user may install packages; otherwise that one test is skipped and says why.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  return 0 2>/dev/null || exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium for the report test..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "chromium could not be installed; the report's browser test will be skipped" >&2
fi
