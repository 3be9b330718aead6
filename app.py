"""The web app, one command: `python app.py [--host 127.0.0.1] [--port 7860]`.

Same as `behavior-agent serve`; the app itself lives in `agent/web/`.
"""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["serve"]
    main()
