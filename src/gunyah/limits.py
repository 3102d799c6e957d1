"""How long a guest may run on the vCPU before it is stopped.

Apart from `vcpu` so that the command line can show them in its help without
loading the CPU emulator for every command."""

DEFAULT_MAX_INSTRUCTIONS = 50_000_000
DEFAULT_TIMEOUT = 10.0  # seconds of wall-clock time
