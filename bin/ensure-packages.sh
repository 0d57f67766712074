#!/usr/bin/env bash
# Installs the Debian packages a make target runs for real, once: `ensure-packages.sh STAMP
# CHECK=PACKAGE...`. CHECK is a command name found on PATH (or in /usr/sbin), or `py:MODULE` for a
# module the system python3 must import. Missing ones are installed with apt-get (root); without
# root or apt-get it names the command to run and fails, so no test ever fails for a missing tool.
set -euo pipefail
stamp=$1; shift
[ -f "$stamp" ] && exit 0
missing=()
for pair in "$@"; do
  check=${pair%%=*} pkg=${pair#*=}
  case "$check" in
    py:*) python3 -c "import ${check#py:}" 2>/dev/null && continue ;;
    *) { command -v "$check" || [ -x "/usr/sbin/$check" ]; } >/dev/null 2>&1 && continue ;;
  esac
  missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && apt-get install -y ${missing[*]}"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: missing system packages: ${missing[*]}. Install them first: sudo sh -c '$cmd'" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
mkdir -p "$(dirname "$stamp")"
touch "$stamp"
