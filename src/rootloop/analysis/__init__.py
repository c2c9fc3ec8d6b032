"""Analysis shared by skills and reasoners: anomaly scores, log templates."""
