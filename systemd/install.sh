#!/usr/bin/env bash
# Installs hyperagent's binary, units, sysusers.d and tmpfiles.d files and,
# when /etc/hyperagent holds no configuration yet, the scaffold of a
# migration repo whose paths are the ones the units grant.
#
#   systemd/install.sh [DESTDIR]
#
# HYPERAGENT_BIN names a built binary (default: go build ./cmd/hyperagent).
# With DESTDIR (packaging, tests) nothing on the running system changes.
# Without it, as root, it then runs systemd-sysusers and systemd-tmpfiles
# and reloads systemd; enable the units yourself:
#
#   systemctl enable --now hyperagent-worker@main.service hyperagent.service
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-}

bin=${HYPERAGENT_BIN:-}
if [[ -z $bin ]]; then
  bin=$(mktemp -d)/hyperagent
  go build -o "$bin" ./cmd/hyperagent
fi

install -D -m 0755 "$bin" "$dest/usr/bin/hyperagent"
install -D -m 0644 systemd/hyperagent.service "$dest/usr/lib/systemd/system/hyperagent.service"
install -D -m 0644 systemd/hyperagent-worker@.service "$dest/usr/lib/systemd/system/hyperagent-worker@.service"
install -D -m 0644 systemd/hyperagent.sysusers "$dest/usr/lib/sysusers.d/hyperagent.conf"
install -D -m 0644 systemd/hyperagent.tmpfiles "$dest/usr/lib/tmpfiles.d/hyperagent.conf"
install -d -m 0750 "$dest/etc/hyperagent"
if ! compgen -G "$dest/etc/hyperagent/*.hcl" >/dev/null; then
  "$dest/usr/bin/hyperagent" init "$dest/etc/hyperagent"
fi

if [[ -z $dest ]]; then
  systemd-sysusers /usr/lib/sysusers.d/hyperagent.conf
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/hyperagent.conf
  chgrp -R hyperagent /etc/hyperagent
  if [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
  fi
fi
