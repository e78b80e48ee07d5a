#!/usr/bin/env bash
# Installs the Debian packages bingeo needs when they are missing:
# PostgreSQL 15 with PostGIS 3 (the embedded cluster) and GDAL's command-line tools.
set -euo pipefail

packages=()
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || packages+=(postgresql-15-postgis-3)
command -v ogrinfo >/dev/null 2>&1 || packages+=(gdal-bin)
for extra in "$@"; do
  dpkg -s "$extra" >/dev/null 2>&1 || packages+=("$extra")
done
[ ${#packages[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian packages: ${packages[*]}" >&2
if ! $sudo apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; then
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
fi
