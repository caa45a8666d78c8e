#!/bin/sh
# Entrypoint of a sandbox Machine: the home volume arrives owned by root; give it to the
# sandbox user, seed it on first boot, then run the agent as that user (never as root).
set -eu
home="${CLOUDOS_AGENT_HOME:-/home/user}"
mkdir -p "$home"
if [ ! -e "$home/.bashrc" ]; then
  cp -a /etc/skel/. "$home/" 2>/dev/null || true
  chown -R 1000:1000 "$home"
fi
# Only the top on later boots: everything below was created by the user.
chown 1000:1000 "$home"
exec setpriv --reuid=1000 --regid=1000 --init-groups --inh-caps=-all \
  env HOME="$home" USER=user /usr/local/bin/cloudos-agent "$@"
