"""LLM providers behind one interface: one structured-signal call in, parsed arguments and usage out."""
