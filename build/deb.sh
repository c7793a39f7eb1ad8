#!/usr/bin/env bash
# Builds the Debian package into OUTDIR (default: dist/):
#
#   build/deb.sh [OUTDIR]
#
# The binary is stamped with VERSION and COMMIT (-ldflags -X main.version,
# main.commit). Unset, COMMIT is the checkout's HEAD (with "-dirty" when
# the tree has changes) and VERSION 0.0.0+git<commit time>.<short commit>,
# which sorts in commit order. The files come from systemd/install.sh into
# a staging directory; nfpm (build/nfpm.yaml), run from the module proxy at
# a pinned version, packs them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}

commit=${COMMIT:-$(git rev-parse HEAD)}
if [[ -z ${COMMIT:-} ]] && ! git diff --quiet HEAD; then
  commit+=-dirty
fi
version=${VERSION:-0.0.0+git$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD).$(git rev-parse --short=12 HEAD)}
export GOARCH=${GOARCH:-$(go env GOARCH)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
  -o "$work/hyperagent" ./cmd/hyperagent
HYPERAGENT_BIN=$work/hyperagent systemd/install.sh "$work/root"

mkdir -p "$out"
STAGE=$work/root VERSION=$version \
  go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 package \
  --config build/nfpm.yaml --packager deb --target "$out/"
