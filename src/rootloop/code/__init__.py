"""Reading the code named by errors, and editing it on the run's branch."""
