"""The maths core: tokenizer, weight format, catalogue, embeddings, attention, encoder (no browser imports)."""
