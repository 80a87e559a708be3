# Sourced by the Makefile and scripts: the environment every build, test and kernel shares.
# It keeps all state (venv, Jupyter config, evcxr cache) inside the project folder.
BF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BF_ROOT
export VIRTUAL_ENV="$BF_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# torch-sys asks the venv's python where libtorch is (the PyPI torch==2.11.0 wheel).
export LIBTORCH_USE_PYTORCH=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BF_ROOT/target}"
export JUPYTER_CONFIG_DIR="$BF_ROOT/.jupyter/config"
export JUPYTER_DATA_DIR="$BF_ROOT/.jupyter/data"
export JUPYTER_RUNTIME_DIR="$BF_ROOT/.jupyter/runtime"
export IPYTHONDIR="$BF_ROOT/.jupyter/ipython"
export MPLCONFIGDIR="$BF_ROOT/.jupyter/matplotlib"
export COLA_DIR="${COLA_DIR:-$BF_ROOT/data/cola_public}"
export BERT_FINETUNE_DEFAULT_MODEL="${BERT_FINETUNE_DEFAULT_MODEL:-$BF_ROOT/models/all-MiniLM-L6-v2}"
# HF_HUB_OFFLINE is not set here: `make run`, the CLI and the notebook download a model the
# user names, as Python does. The Makefile's test target sets it (tests never use the network).
bf_torch_lib() {
    local d
    for d in "$VIRTUAL_ENV"/lib/python3*/site-packages/torch/lib; do
        [ -d "$d" ] && echo "$d" && return 0
    done
    return 1
}
