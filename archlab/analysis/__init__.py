"""The analysis layer: statistics, the paper's claims as data, and the principle analyses."""
