"""kvmfpu runner: plans, runs and reports the kvmfpu test programs (stdlib only)."""
