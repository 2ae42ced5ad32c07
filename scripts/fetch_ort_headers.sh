#!/usr/bin/env bash
# Fetch the onnxruntime C/C++ headers (Debian 13 "trixie" libonnxruntime-dev) into a local folder,
# without installing anything system-wide. PyPI's onnxruntime wheels ship no headers.
# Usage: scripts/fetch_ort_headers.sh [DEST]   (default: build/ort-headers)
# Prints the include directory on stdout. Honours ONNXRUNTIME_INCLUDE_DIR if already set and valid.
set -euo pipefail

if [ -n "${ONNXRUNTIME_INCLUDE_DIR:-}" ] && [ -f "$ONNXRUNTIME_INCLUDE_DIR/onnxruntime_c_api.h" ]; then
  echo "$ONNXRUNTIME_INCLUDE_DIR"
  exit 0
fi

dest=$(realpath -m "${1:-build/ort-headers}")
include="$dest/usr/include/onnxruntime"
if [ -f "$include/onnxruntime_c_api.h" ]; then
  echo "$include"
  exit 0
fi

command -v apt-get >/dev/null || { echo "fetch_ort_headers: apt-get not found; set ONNXRUNTIME_INCLUDE_DIR to a folder holding onnxruntime_c_api.h" >&2; exit 1; }
src=/etc/apt/sources.list.d/debian.sources
[ -f "$src" ] || { echo "fetch_ort_headers: $src not found; set ONNXRUNTIME_INCLUDE_DIR instead" >&2; exit 1; }

work="$dest/apt"
mkdir -p "$work/lists/partial" "$work/parts" "$work/archives/partial" "$work/debs"
# Same mirrors as the machine, but the trixie suite only.
awk 'BEGIN{RS="";ORS="\n\n"} /URIs:/ && !/security/ {
  gsub(/Suites:[^\n]*/, "Suites: trixie"); print }' "$src" > "$work/trixie.sources"
opts=(-o "Dir::Etc::SourceList=$work/trixie.sources" -o "Dir::Etc::SourceParts=$work/parts"
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
      -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -qq update >&2
(cd "$work/debs" && apt-get "${opts[@]}" -qq download libonnxruntime-dev >&2)
dpkg -x "$work"/debs/libonnxruntime-dev_*.deb "$dest"
[ -f "$include/onnxruntime_c_api.h" ] || { echo "fetch_ort_headers: headers missing after unpack" >&2; exit 1; }
echo "$include"
