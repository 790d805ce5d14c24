"""Recognition: clinical text, value shapes, sources, sides, pregnancy, identity, budget."""
