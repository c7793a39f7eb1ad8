#!/usr/bin/env bash
# Installs hyperagent's binary, units, sysusers.d and tmpfiles.d files, man
# pages, bash and zsh completion and licence and, when /etc/hyperagent
# holds no configuration yet, the scaffold of a migration repo whose paths
# are the ones the units grant. build/deb.sh packages what it installs.
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
# Made by the binary from its own help and flags.
"$dest/usr/bin/hyperagent" man "$dest/usr/share/man/man1" >/dev/null
gzip -9nf "$dest"/usr/share/man/man1/hyperagent*.1
install -d -m 0755 "$dest/usr/share/bash-completion/completions" "$dest/usr/share/zsh/vendor-completions"
"$dest/usr/bin/hyperagent" completion bash >"$dest/usr/share/bash-completion/completions/hyperagent"
"$dest/usr/bin/hyperagent" completion zsh >"$dest/usr/share/zsh/vendor-completions/_hyperagent"
install -D -m 0644 LICENSE "$dest/usr/share/doc/hyperagent/copyright"
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
