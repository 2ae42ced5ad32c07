#!/usr/bin/env bash
# Type-check the package as it is installed: holocron/ with export/ and runtime/ mapped in as holocron.export and
# holocron.runtime (pyproject's wheel.packages). mypy reads a folder of links to the sources, so the checked module
# names are the installed ones; then the benchmark scripts, from their folder (they import their helpers as top-level
# modules). Settings: [tool.mypy] in pyproject.toml.
#   scripts/typecheck.sh [MYPY]   (default: .venv/bin/mypy)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mypy="${1:-$root/.venv/bin/mypy}"
[[ "$mypy" == /* ]] || mypy="$PWD/$mypy"  # the check runs from the folder of links
tree="$root/build/typecheck"
rm -rf "$tree/holocron"
mkdir -p "$tree/holocron"
for entry in "$root"/holocron/*; do
  [[ "$(basename "$entry")" == __pycache__ ]] || ln -s "$entry" "$tree/holocron/"
done
ln -s "$root/export" "$tree/holocron/export"
ln -s "$root/runtime" "$tree/holocron/runtime"
cd "$tree"
"$mypy" --config-file "$root/pyproject.toml" --cache-dir "$tree/.mypy_cache" -p holocron
cd "$root/benchmarks"
exec "$mypy" --config-file "$root/pyproject.toml" --cache-dir "$tree/.mypy_cache_benchmarks" ./*.py
