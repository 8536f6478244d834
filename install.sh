#!/usr/bin/env bash
# Installs trautoml into ./.venv with everything it needs offline: Debian's Fashion-MNIST (when apt is usable)
# and the Python packages (torch/torchvision pinned to releases that install from local files).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get update -q && $SUDO apt-get install -y -q dataset-fashion-mnist; } >/dev/null \
    || echo "install.sh: could not install dataset-fashion-mnist; builtin:fashion-mnist will be unavailable" >&2
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev${TRAUTOML_EXTRAS:+,$TRAUTOML_EXTRAS}]"
echo "install.sh: trautoml installed in $(pwd)/.venv"
