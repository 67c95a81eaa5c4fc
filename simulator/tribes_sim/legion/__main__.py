"""``python -m tribes_sim.legion --dir DIR``: run Legion (the fleet launcher and the test
library's runner find it by this command line)."""

import sys

from tribes_sim.legion.server import main

if __name__ == "__main__":
    sys.exit(main())
