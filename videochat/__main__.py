import sys

from videochat.cli import main

sys.exit(main())
