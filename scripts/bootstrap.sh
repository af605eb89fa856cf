#!/usr/bin/env bash
# Installs everything Streetwatch needs on a fresh Debian/Ubuntu machine:
# Debian packages (RTSP test server, ffmpeg, PostgreSQL) and a virtual environment
# with torch, ultralytics and the project. Safe to re-run: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${STREETWATCH_VENV:-.venv}
PY=${PYTHON:-python3}
DEB_PKGS=(ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
          gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-tools
          postgresql chromium chromium-driver fonts-wqy-microhei)
EXTRAS=${STREETWATCH_EXTRAS:-edge,api,dev}

# pip.conf on these machines lists extra local indexes that print a warning per package
# when they lack it; keep the output readable but keep pip's exit status.
pipq() { "$VENV/bin/pip" "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; return "${PIPESTATUS[0]}"; }
# Every package at the version the tests last passed with (see the file's header).
PINS=(-c scripts/constraints.txt)
if [ -n "${STREETWATCH_UNPINNED:-}" ]; then PINS=(); fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.streetwatch-installed"
want="$(cat pyproject.toml scripts/bootstrap.sh scripts/constraints.txt | sha256sum | cut -c1-16) $EXTRAS ${STREETWATCH_UNPINNED:+unpinned}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # pip halfway through a 7 GB install on a full disk leaves a broken venv and an OSError
  # many lines up; say it first, in one line. torch 2.14.1 is a CUDA build: with its nvidia
  # libraries and triton it is 5.5 GB of the ~7 GB the edge extras take.
  need_gib=1
  if [[ ",$EXTRAS," == *",edge,"* ]] && ! compgen -G "$VENV/lib/python*/site-packages/torch" >/dev/null; then
    need_gib=7  # the venv is 6.9 GB (6.4 GiB); pip reads the local wheels in place
  fi
  free_gib=$(( $(df -Pk "$VENV" | awk 'NR==2 {print $4}') / 1048576 ))
  if [ "$free_gib" -lt "$need_gib" ]; then
    echo "bootstrap: only ${free_gib} GiB free where $VENV lives; installing streetwatch[$EXTRAS] needs about ${need_gib} GiB" >&2
    exit 1
  fi
  if [[ ",$EXTRAS," == *",edge,"* ]]; then
    # torch first, pinned: an unpinned 'torch' from another package's requirements
    # would pull a different build. torchvision 0.29.1 only imports beside torch 2.14.1.
    pipq install -q "${PINS[@]}" torch==2.14.1 torchvision==0.29.1
  fi
  echo "bootstrap: installing streetwatch[$EXTRAS]"
  pipq install -q "${PINS[@]}" -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi
# The deployed model's ONNX (the edge's default backend) is made here from its .pt rather than
# committed: 10 MB of float32 that the 5 MB checkpoint already holds. The one before it is
# exported too, for a rollback; older ones on demand (`streetwatch model export models/X`).
for MODEL_DIR in models/streetwatch-v4 models/streetwatch-v5; do
  name=$(basename "$MODEL_DIR")
  if [[ ",$EXTRAS," == *",edge,"* ]] && [ ! -f "$MODEL_DIR/$name.onnx" ]; then
    echo "bootstrap: exporting $MODEL_DIR to ONNX and OpenVINO"
    if ! "$VENV/bin/streetwatch" model export "$MODEL_DIR" >"$VENV/model-export-$name.log" 2>&1; then
      echo "bootstrap: WARNING: model export failed (see $VENV/model-export-$name.log); the edge needs it: streetwatch model export $MODEL_DIR" >&2
    fi
  fi
done
echo "bootstrap: ready ($VENV)"
