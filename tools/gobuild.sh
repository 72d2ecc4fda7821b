# Shared by the tools/build-*.sh scripts (sourced, not run): pinned versions from a wrapper module's
# go.mod, the cache root, the "Go is missing" error, and a go build that prints progress while it runs.
# Every binary is built with CGO_ENABLED=0 -trimpath, GOTOOLCHAIN=local, into "<out>.partial" first, so
# an interrupted build never looks cached.

cache_root="${DRIFTWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwarden}"

# module_version GOMOD MODULE: the version GOMOD requires MODULE at (exits 2 when there is none).
module_version() {
  local version
  version="$(awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit}' "$1")"
  if [[ -z "$version" ]]; then
    echo "error: no $2 version in $1" >&2
    exit 2
  fi
  echo "$version"
}

# require_go WHAT OUT: exit 2 with a clear message when the go command is missing.
require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "error: the Go toolchain (go 1.25 or newer) is needed to build $1 from source," >&2
    echo "       and 'go' is not on PATH. Install Go, or put prebuilt binaries in $2." >&2
    exit 2
  fi
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
}

# go_build LABEL OUTFILE PACKAGE [go build flags...]: build in the current module with a progress line
# every minute, so a long silent compile is not mistaken for a hang.
go_build() {
  local label="$1" outfile="$2" package="$3"
  shift 3
  local start ticker
  start=$(date +%s)
  echo "$label: building $package ... started $(date +%H:%M:%S)"
  # The ticker kills its own sleep when stopped, so no stray process holds the output pipe open.
  (
    trap 'kill $nap 2>/dev/null; exit 0' TERM
    while true; do
      sleep 60 & nap=$!
      wait "$nap"
      echo "$label:       still building ($(( $(date +%s) - start ))s)"
    done
  ) &
  ticker=$!
  # shellcheck disable=SC2064  # expand now: the trap must kill this very ticker
  trap "kill $ticker 2>/dev/null || true" EXIT
  go build -trimpath "$@" -o "$outfile" "$package"
  kill "$ticker" 2>/dev/null || true
  trap - EXIT
  echo "$label: $(basename "$outfile") done in $(( $(date +%s) - start ))s"
}

# publish OUT: move the finished "<out>.partial" into place.
publish() {
  rm -rf "$1"
  mv "$1.partial" "$1"
}
