"""Where and how a run trains (jobs, GPU slots, numerics, events, progress); never what it computes."""
