"""How long a guest may run on the vCPU before it is stopped.

Apart from `vcpu` so that the command line can show them in its help without
loading the CPU emulator for every command."""

DEFAULT_MAX_INSTRUCTIONS = 50_000_000
DEFAULT_TIMEOUT = 10.0  # seconds of wall-clock time
# The engine takes both as 64-bit counts (instructions, microseconds): past
# these they would wrap, and a run would stop at another limit than the one named.
MAX_INSTRUCTIONS = (1 << 64) - 1
MAX_TIMEOUT = ((1 << 64) - 1) // 1_000_000  # seconds
MAX_MEMORY = 256 << 20  # guest memory, loadable segments and stack together
MAX_STACK = MAX_MEMORY
