#!/bin/sh
# Install the Debian/Ubuntu packages a target needs, only those missing (needs root).
#   run:  python3-venv, mmdebstrap (builds the local Asterisk 22 chroot), espeak-ng and sox
#         (the own voice robot's speech, 8 kHz)
#   test: the above + baresip-core (real SIP phones), chromium (browser tests)
set -eu
target=${1:-run}
want="mmdebstrap espeak-ng sox"
[ "$target" = test ] && want="$want baresip-core chromium"
python3 -m venv --help >/dev/null 2>&1 && python3 -m ensurepip --version >/dev/null 2>&1 || want="$want python3-venv"
missing=""
for pkg in $want; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "Нужны пакеты:$missing — запустите от root или установите их: apt-get install$missing" >&2
  exit 1
fi
echo "Устанавливаю пакеты:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
