#!/bin/sh
# Refreshes dashboard/assets/echarts.min.js from the npm echarts package (the
# major version go-echarts v2.6 targets). The file is committed so that herd
# builds offline and the dashboard never loads anything from another host.
set -eu
version="${1:-5.6.0}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "echarts@$version" --silent >/dev/null && tar xzf "echarts-$version.tgz")
cp "$tmp/package/dist/echarts.min.js" "$(dirname "$0")/../dashboard/assets/echarts.min.js"
echo "echarts $version: $(sha256sum "$(dirname "$0")/../dashboard/assets/echarts.min.js" | cut -d' ' -f1)"
