"""The analysis stage: run tables, outcomes and their statistics, the scorecard, probes, completions."""
