#!/bin/bash
# Stub of the thopter image's /usr/local/bin/start-observer.sh for the simulated machines
# (tests/harness/thopter_machine.py): no pm2, no session observer.
# SIM_OBSERVER_DELAY (seconds) makes this step slow.
echo "[stub] start-observer.sh: no session observer in the simulation"
sleep "${SIM_OBSERVER_DELAY:-0}"
