#!/usr/bin/env bash
# Format checks: clang-format (.clang-format: Google style, 100 columns) on every C++
# file, buildifier's format and lint on every BUILD, WORKSPACE and .bzl file.
#
#   bash .ci/check_format.sh          # check; exit 1 and list what is off
#   bash .ci/check_format.sh --fix    # rewrite the files in place
#
# clang-format comes from Debian, buildifier from npm (@bazel/buildifier ships the
# binary), installed into .cache/buildifier on first use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fix=0
[ "${1:-}" = "--fix" ] && fix=1

install_debian() {  # package...
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "check_format: installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "check_format: please install: $*" >&2
    exit 1
  fi
}

command -v clang-format >/dev/null || install_debian clang-format
command -v npm >/dev/null || install_debian npm
buildifier="$root/.cache/buildifier/node_modules/.bin/buildifier"
if [ ! -x "$buildifier" ]; then
  mkdir -p "$root/.cache/buildifier"
  npm install --no-save --no-audit --no-fund --prefix "$root/.cache/buildifier" \
    @bazel/buildifier@8.2.1 >/dev/null
fi

mapfile -t cc_files < <(git ls-files '*.cc' '*.h' | grep -v '^third_party/')
mapfile -t bazel_files < <(git ls-files | grep -E '(^|/)(BUILD|WORKSPACE)$|\.bzl$')
# Bazel 4.2.3 has sh_test and CcInfo built in, and no rules_shell or
# rules_cc//cc/common exist offline to load them from.
lint_warnings="-native-sh-test,-native-cc-info"

if [ $fix -eq 1 ]; then
  clang-format -i "${cc_files[@]}"
  "$buildifier" "${bazel_files[@]}"
  "$buildifier" -lint=fix -warnings="$lint_warnings" "${bazel_files[@]}"
  exit 0
fi

status=0
off=$(clang-format --dry-run "${cc_files[@]}" 2>&1 | grep -oE '^[^:]+\.(cc|h)' | sort -u || true)
if [ -n "$off" ]; then
  echo "check_format: not clang-formatted (bash .ci/check_format.sh --fix):" >&2
  echo "$off" >&2
  status=1
fi
if ! "$buildifier" -mode=check -lint=warn -warnings="$lint_warnings" "${bazel_files[@]}"; then
  echo "check_format: buildifier found the above (bash .ci/check_format.sh --fix)" >&2
  status=1
fi
[ $status -eq 0 ] && echo "check_format: ${#cc_files[@]} C++ files and ${#bazel_files[@]} Bazel files are clean"
exit $status
