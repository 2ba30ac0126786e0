#!/bin/bash
# Stub of the thopter image's /usr/local/bin/firewall.sh for the simulated machines
# (tests/harness/thopter_machine.py): egress filtering with nftables is not simulated.
# SIM_FIREWALL_DELAY (seconds) makes this step slow, as resolving the allowlist is.
echo "[stub] firewall.sh: egress filtering is not simulated"
sleep "${SIM_FIREWALL_DELAY:-0}"
