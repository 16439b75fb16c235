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
	esac
done

[ -z "$need" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$need"
$SUDO apt-get update -qq
# The package's maintainer script may try to start a system-wide ClickHouse;
# herd never uses it (it runs its own on free loopback ports).
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
for pkg in $need; do
	have "$pkg" || { echo "install-deps: $pkg is still missing after apt-get install" >&2; exit 1; }
done
