"""The training stage: one run's loop, the tasks it trains, the fast paths, and stacks of runs."""
