"""Call quality: per-session and per-code rollups and the figures read from them."""
