"""Learning from demonstrations: the dataset format (``demos``) and the RS-IMLE generator."""
