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
	# The cluster tests' coordination service (its package brings Java).
	zookeeper) [ -f /usr/share/java/zookeeper.jar ] && have java || need="$need zookeeper" ;;
	node)
		have node || need="$need nodejs"
		have npm || need="$need npm"
		;;
	esac
done

# The trackers the ingest tests drive, at the versions their lock files pin,
# installed after node itself (below): the official Segment Node SDK, and
# Segment's analytics.js and Plausible's tracker bundled for the browser.
npm_dir() { # dir, a package that must exist afterwards
	dir="$(dirname "$0")/../ingest/testdata/$1"
	[ -d "$dir/node_modules/$2" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
	echo "installing: $1 (npm ci in ingest/testdata/$1)"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	[ -d "$dir/node_modules/$2" ] || { echo "install-deps: $2 is still missing after npm ci" >&2; exit 1; }
}
segment_sdk() {
	npm_dir segment-sdk @segment/analytics-node
	npm_dir browser-trackers @segment/analytics-next
	dir="$(dirname "$0")/../ingest/testdata/browser-trackers"
	if [ ! -f "$dir/bundle.js" ] || [ "$dir/trackers.js" -nt "$dir/bundle.js" ] || [ "$dir/package-lock.json" -nt "$dir/bundle.js" ]; then
		(cd "$dir" && npm run --silent build) || { echo "install-deps: bundling the browser trackers failed" >&2; exit 1; }
	fi
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
	[ "$pkg" = zookeeper ] && { [ -f /usr/share/java/zookeeper.jar ] || { echo "install-deps: zookeeper is still missing after apt-get install" >&2; exit 1; }; continue; }
	have "$pkg" || { echo "install-deps: $pkg is still missing after apt-get install" >&2; exit 1; }
done
if $want_sdk; then segment_sdk; fi
