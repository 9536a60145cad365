#!/usr/bin/env bash
# Two one-thread workers run the stages in order on one folder tree (resumable: rerun to continue):
#   bash docs/results/archive/mboshi-seeds/run.sh        (from the repository root)
#   STAGES="1a-parp-omp-50 5-mpi-random 4-parp-omp-90" bash docs/results/archive/mboshi-seeds/run.sh    (some stages, in order)
set -u
here=docs/results/archive/mboshi-seeds
worker() {
  for stage in ${STAGES:-1-parp-omp 2-omp-half 3-parp-double 4-parp-omp-90 5-mpi-random 5b-mpi-random-90 5c-mpi-random-10-70 5d-mpi-random-30 6-imp}; do
    OMP_NUM_THREADS=1 parp sweep --config "$here/$stage.yaml" || echo "stage $stage: worker $1 stopped ($?)"
  done
}
worker a > "${LOG_DIR:-runs/mboshi-seeds}/worker-a.log" 2>&1 &
sleep 20
worker b > "${LOG_DIR:-runs/mboshi-seeds}/worker-b.log" 2>&1 &
wait
