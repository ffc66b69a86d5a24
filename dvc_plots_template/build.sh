#!/usr/bin/env bash
# Rebuild dvc_plots_template/index.html: DVC's plot page with vega, vega-lite and vega-embed
# inlined, so that `dvc plots show` / `dvc plots diff` pages render without network access.
# The versions are the ones DVC's own page loads from cdn.jsdelivr.net (dvc_render/vega.py).
# Needs npm (registry access) once; the generated index.html is committed.
set -euo pipefail
VEGA=5.20.2 VEGA_LITE=5.2.0 VEGA_EMBED=6.18.2
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" >/dev/null)
for p in vega vega-lite vega-embed; do mkdir -p "$tmp/$p"; tar xzf "$tmp/$p"-[0-9]*.tgz -C "$tmp/$p"; done
inline() {  # name version file
  local js="$tmp/$1/package/build/$1.min.js"
  if grep -q '</script' "$js" || grep -qE '\{(plot_divs|scripts|refresh_tag)\}' "$js"; then
    echo "$js contains text that breaks an inline <script> or a DVC placeholder" >&2; exit 1
  fi
  printf '<script type="text/javascript">\n/* %s@%s (BSD-3-Clause, https://github.com/vega/%s) */\n' "$1" "$2" "$1"
  cat "$js"; printf '\n</script>\n'
}
{
  cat <<'HEAD'
<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- rlpipe offline template: vega, vega-lite and vega-embed are inlined below (no CDN).
         Built by dvc_plots_template/build.sh. No DVC scripts placeholder on purpose: DVC would
         put its CDN script tags there. -->
HEAD
  inline vega "$VEGA"; inline vega-lite "$VEGA_LITE"; inline vega-embed "$VEGA_EMBED"
  cat <<'TAIL'
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
TAIL
} > "$here/index.html"
echo "wrote $here/index.html ($(wc -c < "$here/index.html") bytes)"
