"""Card payments: per-card spend windows and per-merchant load (the `streamcore demo` app)."""
