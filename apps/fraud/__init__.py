"""Card fraud: velocity features, a co-located model, rules, decisions (the `streamcore demo` app)."""
