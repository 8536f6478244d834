#!/usr/bin/env bash
# Installs trautoml into ./.venv with everything it needs offline: Debian's Fashion-MNIST (when apt is usable)
# and the Python packages (torch/torchvision pinned to releases that install from local files).
#   ./install.sh          the product (and pytest)
#   ./install.sh --all    also every extra the test suite exercises: Ray, the syne-tune peer (about 1.2 GB) and
#                         Debian's Chromium for the browser test. The README's test command uses this.
# TRAUTOML_EXTRAS=ray,peers adds extras by name.
set -euo pipefail
cd "$(dirname "$0")"
EXTRAS="dev${TRAUTOML_EXTRAS:+,$TRAUTOML_EXTRAS}"
APT_PACKAGES=()
[ -d /usr/share/datasets/fashion-mnist ] || APT_PACKAGES+=(dataset-fashion-mnist)
case "${1:-}" in
  --all) EXTRAS="dev,ray,peers"; command -v chromium >/dev/null || APT_PACKAGES+=(chromium) ;;
  "") ;;
  *) echo "install.sh: unknown option '$1' (use --all or nothing)" >&2; exit 2 ;;
esac
if [ ${#APT_PACKAGES[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${APT_PACKAGES[@]}"; } >/dev/null \
    || echo "install.sh: could not install ${APT_PACKAGES[*]} with apt-get" >&2
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
echo "install.sh: trautoml installed in $(pwd)/.venv (extras: $EXTRAS)"
