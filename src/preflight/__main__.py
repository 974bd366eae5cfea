import os
import sys

from preflight.cli import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Not sys.exit: after a py-rattler solve, interpreter shutdown sometimes crashes in its
# runtime's threads (measured: SIGSEGV in about 1 of 4 runs), which would turn a clean
# exit status into -11. Nothing is left to clean up at this point.
os._exit(code)
