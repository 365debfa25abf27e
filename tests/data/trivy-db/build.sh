#!/usr/bin/env bash
# Rebuilds db/trivy.db and db/metadata.json, the small Trivy vulnerability database the tests
# scan with, from content.json (edit that file, then run this script and commit the result).
#
# The database is committed rather than built by every test run: building needs Go and bbolt
# from Debian (about 200 MB of packages and a compile), while the file is a few KiB that
# changes only when content.json does.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/bbolt ] || need_apt+=(golang-github-coreos-bbolt-dev)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "missing Debian packages: ${need_apt[*]} (run as root or install them)" >&2
        exit 2
    fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gopath/src/trivydb"
cp builder.go "$work/gopath/src/trivydb/main.go"
# Debian's Go packages live in /usr/share/gocode, outside any module: build in GOPATH mode.
(cd "$work/gopath/src/trivydb" &&
    GOPATH="$work/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$work/cache" \
        go build -o "$work/builder" .)
mkdir -p db
"$work/builder" content.json db/trivy.db
# Trivy checks the schema version (2); with --skip-db-update it does not look at NextUpdate.
cat > db/metadata.json <<'JSON'
{"Version":2,"NextUpdate":"2099-01-01T00:00:00Z","UpdatedAt":"2026-01-01T00:00:00Z","DownloadedAt":"2026-01-01T00:00:00Z"}
JSON
ls -l db
