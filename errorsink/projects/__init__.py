"""Projects: membership, API keys, runner settings and retention."""
