#!/bin/sh
# Entrypoint of a sandbox Machine: the home volume arrives owned by root; give it to the
# sandbox user, seed it on first boot, then run the agent as that user (never as root).
set -eu
home="${CLOUDOS_AGENT_HOME:-/home/user}"
mkdir -p "$home"
# Only the top: everything below was created by the user (and `chown -R` as root would be
# one more walk through what the user planted).
chown 1000:1000 "$home"
# No supplementary groups, no capabilities: the user, and nothing more.
as_user="setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all --"
if [ ! -e "$home/.bashrc" ]; then
  # Seeded as the user, not root: the home is the user's, and a symlink they planted
  # (~/.profile -> /etc/passwd) must lead a copy only where they may write anyway.
  $as_user cp -R --preserve=mode,timestamps /etc/skel/. "$home/" 2>/dev/null || true
fi
exec $as_user env HOME="$home" USER=user /usr/local/bin/cloudos-agent "$@"
