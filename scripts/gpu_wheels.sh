#!/usr/bin/env bash
# Wheels for scripts/gpu_check.sh on a GPU machine that cannot reach PyPI. Run this where pip
# reaches PyPI; it fills wheels/ (git-ignored), which then travels with the working tree
# (about 57 MB for CPython 3.12 with the default SKIP).
#
# The GPU machine is expected to have a Python with a CUDA build of torch (and the big
# scientific packages: numpy, scipy, scikit-learn, pyarrow, matplotlib). So by default every
# pinned package of constraints.txt is fetched, with no dependency resolution (--no-deps:
# constraints.txt is already the whole closure), except those in SKIP. Set SKIP='' to fetch
# everything but torch; torch's CUDA wheels (with nvidia-*, several GB) are left out always.
#
#   scripts/gpu_wheels.sh                         # for CPython 3.12 on manylinux x86_64
#   PYVER=3.11 DEST=wheels scripts/gpu_wheels.sh  # another target Python
set -euo pipefail
cd "$(dirname "$0")/.."

PYVER=${PYVER:-3.12}
DEST=${DEST:-wheels}
PIP=${PIP:-.venv/bin/python -m pip}
# Already on a CUDA machine image, large, only for linting and type checks, or only for the
# model exports' tests (onnx, onnxruntime, mlflow-skinny and what only they need: about
# 170 MB, past what a device run carries).
SKIP=${SKIP-'^(torch|triton|nvidia-.*|numpy|scipy|scikit-learn|pyarrow|matplotlib|contourpy|fonttools|kiwisolver|pillow|sympy|mpmath|networkx|ruff|mypy|librt|ast-serialize|pandas-stubs|types-PyYAML|setuptools|pytest|pytest-timeout|pluggy|iniconfig|hypothesis|psutil|onnx|onnxruntime|mlflow-skinny|databricks-sdk|flatbuffers|gitdb|GitPython|google-auth|ml_dtypes|opentelemetry-proto|opentelemetry-sdk|opentelemetry-semantic-conventions|protobuf|pyasn1|pyasn1_modules|smmap|sqlparse)$'}

abi="cp${PYVER/./}"
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done

mapfile -t wanted < <(
    grep -E '^[A-Za-z0-9_.-]+==' constraints.txt \
        | awk -F'==' -v skip="$SKIP" 'skip == "" || tolower($1) !~ tolower(skip) { print }' \
        | grep -v -E '^torch=='
)
mkdir -p "$DEST"
echo "fetching ${#wanted[@]} wheels for CPython $PYVER into $DEST/"
$PIP download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --abi "$abi" --abi abi3 --abi none "${platforms[@]}" \
    -d "$DEST" "${wanted[@]}"
# ../shared (the NIST StRD files) does not travel with the working tree: the Longley test
# reads this copy through REGFLOW_NIST_DIR (gpu_check.sh sets it).
if [ -f ../shared/data/nist/certified.json ]; then
    mkdir -p "$DEST/nist"
    cp ../shared/data/nist/certified.json ../shared/data/nist/Longley.csv "$DEST/nist/"
fi
echo "done: $(find "$DEST" -name '*.whl' | wc -l) wheels, $(du -sh "$DEST" | cut -f1)"
