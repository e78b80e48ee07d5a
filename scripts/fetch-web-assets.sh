#!/usr/bin/env bash
# Downloads the JavaScript and CSS that bingeo's folium maps need (folium's default JS/CSS list)
# the web app's drawing tools (leaflet-draw), the API documentation's Swagger UI and, for the
# browser tests, axe-core, from the npm registry into bingeo/static/vendor/, so maps work without internet.
# Not committed (see .gitignore); run again to refresh. Needs npm. Two stylesheets of folium's list
# (bootstrap 3 glyphicons, awesome-marker rotation) serve only marker icons, which bingeo's maps
# do not draw, and are not on npm: the maps leave them out.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$root/bingeo/static/vendor"
# name@version as folium's templates ask for them
packages=(
  "leaflet@1.9.3"
  "jquery@3.7.1"
  "bootstrap@5.2.2"
  "leaflet.awesome-markers@2.0.5"
  "@fortawesome/fontawesome-free@6.2.0"
  # the web app's drawing tools (api/web)
  "leaflet-draw@1.0.4"
  # /docs without internet
  "swagger-ui-dist@5.35.0"
  # the accessibility checks of the browser tests
  "axe-core@4.14.1"
)
stamp="$vendor/.packages"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "fetch-web-assets: npm is needed" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$vendor"
mkdir -p "$vendor"
for spec in "${packages[@]}"; do
  name="${spec%@*}"
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tarball="$(ls "$work"/*.tgz)"
  mkdir -p "$vendor/$name"
  tar -xzf "$tarball" -C "$vendor/$name" --strip-components=1
  rm -f "$tarball"
done
echo "${packages[*]}" >"$stamp"
echo "web assets in $vendor" >&2
