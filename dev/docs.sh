#!/usr/bin/env bash
# Build the documentation site into site/ (open site/index.html): executes the example
# notebooks (small sizes; --full for full ones), makes a page of each, builds with MkDocs
# with warnings as errors, and refuses a site that would load anything from the network.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2 NO_MKDOCS_2_WARNING=1
.venv/bin/python dev/docs_site.py "$@"
