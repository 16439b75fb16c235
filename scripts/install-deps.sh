#!/bin/sh
# Installs what herd's demo and tests need and the machine lacks, from Debian's
# packages. Safe to run again: it installs nothing that is already there.
# A failure here fails `make test`; nothing is ever skipped for a missing tool.
set -eu

need=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

have clickhouse-server || need="$need clickhouse-server"
have clickhouse-client || need="$need clickhouse-client"
for want in "$@"; do
	case "$want" in
	chromium) have chromium || need="$need chromium" ;;
	node)
		have node || need="$need nodejs"
		have npm || need="$need npm"
		;;
	esac
done

# The official Segment Node SDK the ingest tests drive, at the version the
# lock file pins; installed after node itself (below).
segment_sdk() {
	dir="$(dirname "$0")/../ingest/testdata/segment-sdk"
	[ -d "$dir/node_modules/@segment/analytics-node" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
	echo "installing: @segment/analytics-node (npm ci in ingest/testdata/segment-sdk)"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	[ -d "$dir/node_modules/@segment/analytics-node" ] || { echo "install-deps: the Segment SDK is still missing after npm ci" >&2; exit 1; }
}
want_sdk=false
for want in "$@"; do [ "$want" = node ] && want_sdk=true; done

if [ -z "$need" ]; then
	if $want_sdk; then segment_sdk; fi
	exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$need"
$SUDO apt-get update -qq
# The package's maintainer script may try to start a system-wide ClickHouse;
# herd never uses it (it runs its own on free loopback ports).
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
for pkg in $need; do
	[ "$pkg" = nodejs ] && pkg=node
	have "$pkg" || { echo "install-deps: $pkg is still missing after apt-get install" >&2; exit 1; }
done
if $want_sdk; then segment_sdk; fi
