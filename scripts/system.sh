#!/usr/bin/env bash
# need_system COMMAND PACKAGE...: make sure COMMAND exists, installing the Debian PACKAGEs with
# apt-get when it does not (as root, or with passwordless sudo). Otherwise print one line that
# says how, and fail. Sourced by scripts/book.sh, scripts/test.sh and scripts/browser_tests.sh.
need_system() {
  local cmd="$1"
  shift
  command -v "$cmd" >/dev/null && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo="sudo"
    else
      echo "[setup] '$cmd' is missing: run 'sudo apt-get install $*' and try again" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "[setup] '$cmd' is missing and this system has no apt-get: install the packages $* with your package manager" >&2
    return 1
  fi
  echo "[setup] installing $* with apt-get (needed for '$cmd')"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  command -v "$cmd" >/dev/null || {
    echo "[setup] apt-get installed $* but '$cmd' is still missing" >&2
    return 1
  }
}
