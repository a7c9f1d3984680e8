"""The report stage: the figure registry, the drawings, the report's context and its LaTeX."""
