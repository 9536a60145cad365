# Sourced by the lent-GPU scripts (gpu_session.sh, gpu_pretrain.sh): the helpers they share; needs PY and `log`.
# `install_wheels [MORE.whl ...]` installs the carried wheels of .whl/ (and any more given) into /tmp/site and puts it
# on PYTHONPATH; NO_WHEELS=1 skips it (a trial on a machine that has the packages).
install_wheels() {
    [[ -n "${NO_WHEELS:-}" ]] && return 0
    ls .whl/*.whl >/dev/null 2>&1 || return 0
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl "$@" || { log "wheels did not install"; return 1; }
    export PYTHONPATH=/tmp/site
}

# `check_imports [MODULE ...]`: parp's sources first on PYTHONPATH, then parp, jiwer, soundfile, torch (and any MODULE
# given) must import; prints torch's version and the device into the session log.
check_imports() {
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    local modules
    modules=$(printf ', %s' parp jiwer soundfile "$@" torch)
    "$PY" -c "import ${modules:2}; print('torch', torch.__version__,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" | tee -a "$W/session.log" \
        || { log "imports failed"; return 1; }
}

# `start_mps`: many small processes on one GPU run concurrently under MPS; without it they take turns. Used only if
# it starts and a CUDA call works under it; a no-op where there is no MPS daemon (a CPU trial).
start_mps() {
    command -v nvidia-cuda-mps-control >/dev/null 2>&1 || return 0
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if nvidia-cuda-mps-control -d && timeout 60 "$PY" -c "import torch; assert torch.ones(4, device='cuda').sum() == 4"
    then log "MPS on"
    else echo quit | nvidia-cuda-mps-control 2>/dev/null; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
         log "MPS off (did not start)"
    fi
}

# `wait_for DEADLINE PID...`: until every PID has exited or the calling script has run DEADLINE seconds.
wait_for() {
    local deadline=$1 alive p
    shift
    while (( SECONDS < deadline )); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
        (( alive == 0 )) && return 0
        sleep 5
    done
}

# `stop_all PID...`: each PID and its children, at once (the cells they were running are dropped).
stop_all() {
    local p
    for p in "$@"; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
