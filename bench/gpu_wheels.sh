# Sourced by the lent-GPU scripts (gpu_session.sh, gpu_pretrain.sh): `install_wheels [MORE.whl ...]` installs the
# carried wheels of .whl/ (and any more given) into /tmp/site and puts it on PYTHONPATH; NO_WHEELS=1 skips it
# (a trial on a machine that has the packages). Needs PY and a `log` function.
install_wheels() {
    [[ -n "${NO_WHEELS:-}" ]] && return 0
    ls .whl/*.whl >/dev/null 2>&1 || return 0
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl "$@" || { log "wheels did not install"; return 1; }
    export PYTHONPATH=/tmp/site
}
