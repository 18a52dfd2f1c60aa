#!/usr/bin/env bash
# Vendor GraphiQL + React UMD builds into static/graphiql/ so the GraphiQL page
# works on offline (government) networks without any CDN.
#
# Usage: scripts/vendor-graphiql.sh [OUTPUT_DIR]
#   OUTPUT_DIR defaults to static/graphiql/ in this repository.
#
# Needs: npm (registry access), tar, sha256sum. Only the pinned versions below
# are fetched (via `npm pack`); index.html in the output dir is not touched.
set -euo pipefail

GRAPHIQL_VERSION="3.8.3"   # graphiql 3.x is the last major shipping a UMD build
REACT_VERSION="18.3.1"     # react / react-dom 18 still ship umd/*.production.min.js

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo_root/static/graphiql}"
mkdir -p "$out"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for spec in "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION"; do
  name="${spec%@*}"
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$work/$name"
  tar -xzf "$work/$name-${spec##*@}.tgz" -C "$work/$name"
done

g="$work/graphiql/package"
r="$work/react/package"
rd="$work/react-dom/package"

# "package@version|source|destination"
files=(
  "graphiql@$GRAPHIQL_VERSION|$g/graphiql.min.js|graphiql.min.js"
  "graphiql@$GRAPHIQL_VERSION|$g/graphiql.min.css|graphiql.min.css"
  "graphiql@$GRAPHIQL_VERSION|$g/LICENSE|LICENSE.graphiql.txt"
  "react@$REACT_VERSION|$r/umd/react.production.min.js|react.production.min.js"
  "react@$REACT_VERSION|$r/LICENSE|LICENSE.react.txt"
  "react-dom@$REACT_VERSION|$rd/umd/react-dom.production.min.js|react-dom.production.min.js"
  "react-dom@$REACT_VERSION|$rd/LICENSE|LICENSE.react-dom.txt"
)

for entry in "${files[@]}"; do
  IFS='|' read -r _pkg src dest <<<"$entry"
  cp "$src" "$out/$dest"
done

# Offline guard: the stylesheet must not pull anything (fonts, @import) from the network.
if grep -Eq '@import|url\(["'"'"']?(https?:)?//' "$out/graphiql.min.css"; then
  echo "error: graphiql.min.css references a remote resource; strip it before vendoring" >&2
  exit 1
fi

{
  echo "# Vendored GraphiQL assets (offline; no CDN). Regenerate with scripts/vendor-graphiql.sh"
  echo "# package@version  file  sha256"
  for entry in "${files[@]}"; do
    IFS='|' read -r pkg _src dest <<<"$entry"
    echo "$pkg  $dest  $(cd "$out" && sha256sum "$dest" | cut -d' ' -f1)"
  done
} >"$out/VERSIONS.txt"

echo "vendored graphiql@$GRAPHIQL_VERSION, react@$REACT_VERSION, react-dom@$REACT_VERSION into $out"
